#version 330
#include "occlusion.glsl"
// A UV-space mask (BGRA, straight alpha) lit by the live face's light as diffuse paint
// (v_light from mesh.vert), blended through the feathered face region. The mask's
// colours are how it looks under the light that makes a typical face look well
// exposed (shading 1).
uniform sampler2D u_tex;
uniform sampler2D u_region;  // r: feathered effect region, g: whole face
uniform float u_opacity;

in vec2 v_uv;
in vec3 v_light;
out vec4 f_color;

void main() {
    vec4 c = texture(u_tex, v_uv);
    f_color = vec4(min(c.rgb * v_light, vec3(1.0)), c.a * texture(u_region, v_uv).r * u_opacity * visible());
}
