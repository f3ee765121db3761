#version 330
// The face swap's mesh: as mesh.vert, with the swap's light folded in per vertex
// (sqrt of albedo scale x the live face's shading x the seam's gain, gamma 2) and how
// squarely the surface faces the camera (the edge fades where it turns away, so no
// silhouette is cut hard). With a face shape (u_warped), each vertex also says where
// the live face was (u_warp: drawn minus live position, and how much of the warped
// frame to draw), so the frame is drawn warped with the mesh.
#include "lighting.glsl"
invariant gl_Position;

uniform vec2 u_size;
uniform float u_zscale;
uniform float u_tex_size;
uniform sampler2D u_seam;     // per face: log gain, texel k at layout uv k / (u_seam_size - 1)
uniform float u_seam_size;
uniform float u_albedo_max;   // the texture holds sqrt(albedo / u_albedo_max)
uniform sampler2D u_warp;     // per face, layout resolution: (dx, dy, weight)
uniform sampler2D u_live_bands;  // swap.live_bands, layout resolution
uniform bool u_warped;

in vec3 in_pos;
in vec2 in_uv;
in vec3 in_normal;

out vec2 v_uv;
out vec3 v_light;
out float v_facing;
out vec2 v_frame;  // the frame's texture coordinate of the live face's point
out float v_warp;  // how much of the warped frame to draw
out vec2 v_band;   // u_live_bands' texture coordinate

void main() {
    vec2 ndc = 2.0 * (in_pos.xy + 0.5) / u_size - 1.0;
    gl_Position = vec4(ndc, -in_pos.z * u_zscale, 1.0);
    v_uv = (in_uv * (u_tex_size - 1.0) + 0.5) / u_tex_size;
    float bs = float(textureSize(u_live_bands, 0).x);
    v_band = (in_uv * (bs - 1.0) + 0.5) / bs;
    vec3 gain = texture(u_seam, (in_uv * (u_seam_size - 1.0) + 0.5) / u_seam_size).rgb;
    v_light = sqrt(u_albedo_max * sh_shade(in_normal)) * exp(0.5 * gain);
    v_facing = smoothstep(0.1, 0.55, in_normal.z);
    vec3 warp = vec3(0.0);
    if (u_warped) {
        float r = float(textureSize(u_warp, 0).x);
        warp = texture(u_warp, (in_uv * (r - 1.0) + 0.5) / r).xyz;
    }
    v_frame = (in_pos.xy - warp.xy + 0.5) / u_size;
    v_warp = warp.z;
}
