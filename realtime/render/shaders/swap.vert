#version 330
// The face swap's mesh: as mesh.vert, with the swap's light folded in per vertex
// (sqrt of albedo scale x the live face's shading x the seam's gain, gamma 2) and how
// squarely the surface faces the camera (the edge fades where it turns away, so no
// silhouette is cut hard).
#include "lighting.glsl"
invariant gl_Position;

uniform vec2 u_size;
uniform float u_zscale;
uniform float u_tex_size;
uniform sampler2D u_seam;     // per face: log gain, texel k at layout uv k / (u_seam_size - 1)
uniform float u_seam_size;
uniform float u_albedo_max;   // the texture holds sqrt(albedo / u_albedo_max)

in vec3 in_pos;
in vec2 in_uv;
in vec3 in_normal;

out vec2 v_uv;
out vec3 v_light;
out float v_facing;

void main() {
    vec2 ndc = 2.0 * (in_pos.xy + 0.5) / u_size - 1.0;
    gl_Position = vec4(ndc, -in_pos.z * u_zscale, 1.0);
    v_uv = (in_uv * (u_tex_size - 1.0) + 0.5) / u_tex_size;
    vec3 gain = texture(u_seam, (in_uv * (u_seam_size - 1.0) + 0.5) / u_seam_size).rgb;
    v_light = sqrt(u_albedo_max * sh_shade(in_normal)) * exp(0.5 * gain);
    v_facing = smoothstep(0.05, 0.35, in_normal.z);
}
