#version 330
// Depth pre-pass: only the nearest surface of each face gets colour afterwards, so
// a half-transparent nose is not blended twice over the cheek behind it.
out vec4 f_color;
void main() {
    f_color = vec4(0.0);
}
