#version 330
// A full-frame quad; texture row 0 (the image's top row) lands on framebuffer row 0.
in vec2 in_vert;
out vec2 v_uv;

void main() {
    v_uv = 0.5 * (in_vert + 1.0);
    gl_Position = vec4(in_vert, 0.999, 1.0);
}
