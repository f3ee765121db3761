#version 330
// Dense face mesh in frame pixels -> clip space. The framebuffer keeps image rows
// in memory order (row 0 = top at y = -1), so reading it back needs no flip.
// Lit effects read v_light: the live face's light at this vertex, as the square root
// of its linear shading (colours are gamma 2, so a display colour times v_light is
// the lit colour); metal reads v_env, the light along the mirrored view ray. Shading
// per vertex is as good as per pixel for 2nd-order SH on a dense mesh, and much
// cheaper on a software rasteriser; effects that do not read them, the compiler drops.
#include "lighting.glsl"
invariant gl_Position;

uniform vec2 u_size;       // frame width, height (px)
uniform float u_zscale;    // depth px -> NDC (larger z is nearer the camera)
uniform float u_tex_size;  // side of the UV textures (texels)

in vec3 in_pos;     // x, y, z in frame pixels
in vec2 in_uv;      // layout UV in [0, 1] (u = col / (R-1), v = row / (R-1))
in vec3 in_normal;  // unit normal in frame axes (x right, y down, z to camera)

out vec2 v_uv;
out vec3 v_normal;
out vec3 v_light;
out vec3 v_env;  // the light seen along the mirrored view ray (metal's reflection)
out float v_z;

void main() {
    vec2 ndc = 2.0 * (in_pos.xy + 0.5) / u_size - 1.0;
    gl_Position = vec4(ndc, -in_pos.z * u_zscale, 1.0);
    // Layout texel centres: the point at u sits on texel u * (S - 1).
    v_uv = (in_uv * (u_tex_size - 1.0) + 0.5) / u_tex_size;
    v_normal = in_normal;
    v_light = sqrt(sh_shade(in_normal));
    v_env = sh_shade(vec3(0.0, 0.0, -1.0) + 2.0 * in_normal.z * in_normal);
    v_z = in_pos.z;
}
