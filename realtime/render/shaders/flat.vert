#version 330
// Debug geometry (landmarks, wireframe, pose axes) in frame pixels.
uniform vec2 u_size;
uniform float u_zscale;
uniform float u_point_size;

in vec3 in_pos;

void main() {
    vec2 ndc = 2.0 * (in_pos.xy + 0.5) / u_size - 1.0;
    gl_Position = vec4(ndc, -in_pos.z * u_zscale, 1.0);
    gl_PointSize = u_point_size;
}
