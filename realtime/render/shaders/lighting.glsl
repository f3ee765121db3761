// The live face's light, pasted in by the renderer where a lit shader includes this file.
// u_sh: 2nd-order spherical harmonics, linear BGR per basis function, with the basis
// constants folded in (realtime.render.lighting.shader_coefficients). Colours are
// linear with gamma 2: square to linearise, square root to display.
uniform vec3 u_sh[9];

vec3 sh_shade(vec3 n) {
    vec3 c = u_sh[0] + u_sh[1] * n.y + u_sh[2] * n.z + u_sh[3] * n.x
        + u_sh[4] * (n.x * n.y) + u_sh[5] * (n.y * n.z) + u_sh[6] * (3.0 * n.z * n.z - 1.0)
        + u_sh[7] * (n.x * n.z) + u_sh[8] * (n.x * n.x - n.y * n.y);
    return max(c, vec3(0.0));
}
