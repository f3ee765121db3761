#version 330
#include "occlusion.glsl"
// Face swap: the source face's de-lit albedo (BGRA; rgb = sqrt(albedo / albedo max),
// alpha = the swap's region minus the live eyeballs and inside of the mouth) times
// the live light of swap.vert; the edge fades where the surface turns away from the
// camera, and what covers the face (occlusion.glsl) stays in front.
uniform sampler2D u_tex;
uniform float u_opacity;

in vec2 v_uv;
in vec3 v_light;
in float v_facing;
out vec4 f_color;

void main() {
    vec4 t = texture(u_tex, v_uv);
    f_color = vec4(min(t.rgb * v_light, vec3(1.0)), t.a * v_facing * u_opacity * visible());
}
