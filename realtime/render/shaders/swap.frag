#version 330
#include "occlusion.glsl"
// Face swap: the source face's de-lit albedo (BGRA; rgb = sqrt(albedo / albedo max),
// alpha = where the source covers, minus the live eyes and mouth) times the live
// light of swap.vert, feathered into the frame through the landmark hull's region and
// where the surface turns away from the camera.
uniform sampler2D u_tex;
uniform sampler2D u_region;
uniform float u_opacity;

in vec2 v_uv;
in vec3 v_light;
in float v_facing;
out vec4 f_color;

void main() {
    vec4 t = texture(u_tex, v_uv);
    f_color = vec4(min(t.rgb * v_light, vec3(1.0)), t.a * texture(u_region, v_uv).r * v_facing * u_opacity * visible());
}
