#version 330
// Draws a texture held in image order (row 0 = top) into a window rectangle.
uniform vec4 u_rect;  // x0, y0, x1, y1 in window NDC

in vec2 in_vert;  // corners in [0, 1], y down
out vec2 v_uv;

void main() {
    v_uv = in_vert;
    gl_Position = vec4(mix(u_rect.x, u_rect.z, in_vert.x), mix(u_rect.w, u_rect.y, in_vert.y), 0.0, 1.0);
}
