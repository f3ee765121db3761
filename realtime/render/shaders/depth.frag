#version 330
#include "occlusion.glsl"
// Debug view: each face's depth, near = bright, over the whole face pixels.
uniform sampler2D u_region;
uniform vec2 u_zrange;  // this face's nearest and farthest z (px)

in vec2 v_uv;
in float v_z;
out vec4 f_color;

void main() {
    float t = clamp((v_z - u_zrange.y) / max(u_zrange.x - u_zrange.y, 1e-3), 0.0, 1.0);
    t = t * t;  // most of a face is near its nose: spread the ramp over it
    // A blue (far) -> yellow (near) ramp; components are BGR.
    vec3 c = mix(vec3(0.45, 0.1, 0.05), vec3(0.2, 0.95, 1.0), t) * (0.35 + 0.65 * t);
    f_color = vec4(c, step(0.5, texture(u_region, v_uv).g) * visible());
}
