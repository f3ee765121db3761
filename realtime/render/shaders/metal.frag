#version 330
#include "occlusion.glsl"
// Polished metal lit by the live face's light: it mirrors that light (the SH shading
// looked up along the reflected view ray, a blurry picture of the room, per vertex),
// with a sharp highlight toward the dominant light, so turning the head or the lamp
// moves it.
uniform sampler2D u_tex;
uniform sampler2D u_region;
uniform float u_opacity;
uniform vec3 u_light_dir;  // toward the dominant light, frame axes (y down, z to camera)
uniform vec3 u_light_col;  // its linear BGR strength

in vec2 v_uv;
in vec3 v_normal;
in vec3 v_light;  // sqrt of the diffuse shading, per vertex (mesh.vert)
in vec3 v_env;    // the light along the mirrored view ray, per vertex (mesh.vert)
out vec4 f_color;

void main() {
    vec4 base = texture(u_tex, v_uv);
    vec3 n = normalize(v_normal);
    vec3 view = vec3(0.0, 0.0, 1.0);
    vec3 tint = base.rgb * base.rgb;
    vec3 env = v_env;
    vec3 diffuse = v_light * v_light;
    float spec = pow(max(dot(n, normalize(u_light_dir + view)), 0.0), 60.0);
    float rim = pow(1.0 - max(n.z, 0.0), 2.0);
    vec3 c = tint * (0.35 * diffuse + 0.75 * env) + (spec + 0.15 * rim) * u_light_col;
    f_color = vec4(sqrt(min(c, vec3(1.0))), base.a * texture(u_region, v_uv).r * u_opacity * visible());
}
