#version 330
// A UV-space mask (BGRA, straight alpha) blended through the feathered face region.
uniform sampler2D u_tex;
uniform sampler2D u_region;  // r: feathered effect region, g: whole face
uniform float u_opacity;

in vec2 v_uv;
out vec4 f_color;

void main() {
    vec4 c = texture(u_tex, v_uv);
    f_color = vec4(c.rgb, c.a * texture(u_region, v_uv).r * u_opacity);
}
