#version 330
#include "occlusion.glsl"
// The frame under the face re-shaded by a known light (the swap benchmark's relit
// controls): its colour times v_light, the square root of the shading u_sh at the
// mesh normal (gamma 2), feathered through the effect region like every mask.
uniform sampler2D u_frame;   // the frame, BGR, texel (x, row) under fragment (x, row)
uniform sampler2D u_region;

in vec2 v_uv;
in vec3 v_light;  // sqrt of the shading, per vertex (mesh.vert)
out vec4 f_color;

void main() {
    vec3 c = texelFetch(u_frame, ivec2(gl_FragCoord.xy), 0).rgb;
    f_color = vec4(min(c * v_light, vec3(1.0)), texture(u_region, v_uv).r * visible());
}
