#version 330
#include "occlusion.glsl"
// Face swap: the source face's de-lit albedo (BGRA; rgb = sqrt(albedo / albedo max),
// alpha = the swap's region minus the live eyeballs and inside of the mouth) times
// the live light of swap.vert; the edge fades where the surface turns away from the
// camera, and what covers the face (occlusion.glsl) stays in front. With a face shape
// (u_warped) the frame under the mesh is drawn warped with it (the live eyes, mouth
// and jaw line move to the new shape), fading back to the frame at the mesh's edge.
uniform sampler2D u_tex;
uniform sampler2D u_frame;
uniform bool u_warped;
uniform float u_opacity;

in vec2 v_uv;
in vec3 v_light;
in float v_facing;
in vec2 v_frame;
in float v_warp;
out vec4 f_color;

void main() {
    vec4 t = texture(u_tex, v_uv);
    vec3 face = min(t.rgb * v_light, vec3(1.0));
    float a = t.a * v_facing * u_opacity * visible();
    if (!u_warped) {
        f_color = vec4(face, a);
        return;
    }
    // a * face + (1 - a) * (w * warped frame + (1 - w) * frame), as one blended colour.
    float w = v_warp * u_opacity;
    float alpha = 1.0 - (1.0 - a) * (1.0 - w);
    vec3 warped = texture(u_frame, v_frame).rgb;
    f_color = vec4((a * face + (1.0 - a) * w * warped) / max(alpha, 1e-4), alpha);
}
