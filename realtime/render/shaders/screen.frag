#version 330
// Our textures hold BGR(A); the window wants RGB.
uniform sampler2D u_tex;

in vec2 v_uv;
out vec4 f_color;

void main() {
    f_color = texture(u_tex, v_uv).bgra;
}
