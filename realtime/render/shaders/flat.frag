#version 330
uniform vec4 u_color;  // BGRA
uniform bool u_round;  // points drawn as discs

out vec4 f_color;

void main() {
    if (u_round && length(gl_PointCoord - 0.5) > 0.5) discard;
    f_color = u_color;
}
