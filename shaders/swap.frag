#version 330
// Face swap: the source face's UV texture (BGRA; alpha = where the source was seen,
// minus the live eyes and mouth), colour-matched to the live face by moving its CIE
// Lab mean and spread toward the live face's, then feathered into the frame.
uniform sampler2D u_tex;
uniform sampler2D u_region;
uniform float u_opacity;
uniform vec3 u_src_mean;  // Lab statistics of the source texture's skin
uniform vec3 u_src_std;
uniform vec3 u_dst_mean;  // ... and of the live face this frame
uniform vec3 u_dst_std;
uniform float u_transfer; // 1 = take the live face's statistics fully

in vec2 v_uv;
out vec4 f_color;

vec3 srgb_to_linear(vec3 c) {
    return mix(c / 12.92, pow((c + 0.055) / 1.055, vec3(2.4)), step(0.04045, c));
}

vec3 linear_to_srgb(vec3 c) {
    c = clamp(c, 0.0, 1.0);
    return mix(c * 12.92, 1.055 * pow(c, vec3(1.0 / 2.4)) - 0.055, step(0.0031308, c));
}

const vec3 WHITE = vec3(0.95047, 1.0, 1.08883);

float f_lab(float t) {
    return t > 0.008856 ? pow(t, 1.0 / 3.0) : 7.787 * t + 16.0 / 116.0;
}

float f_inv(float t) {
    return t > 0.206893 ? t * t * t : (t - 16.0 / 116.0) / 7.787;
}

vec3 rgb_to_lab(vec3 rgb) {
    vec3 l = srgb_to_linear(rgb);
    vec3 xyz = mat3(0.412453, 0.212671, 0.019334,
                    0.357580, 0.715160, 0.119193,
                    0.180423, 0.072169, 0.950227) * l / WHITE;
    vec3 f = vec3(f_lab(xyz.x), f_lab(xyz.y), f_lab(xyz.z));
    return vec3(116.0 * f.y - 16.0, 500.0 * (f.x - f.y), 200.0 * (f.y - f.z));
}

vec3 lab_to_rgb(vec3 lab) {
    float fy = (lab.x + 16.0) / 116.0;
    vec3 xyz = vec3(f_inv(fy + lab.y / 500.0), f_inv(fy), f_inv(fy - lab.z / 200.0)) * WHITE;
    vec3 l = mat3(3.240479, -0.969256, 0.055648,
                  -1.537150, 1.875992, -0.204043,
                  -0.498535, 0.041556, 1.057311) * xyz;
    return linear_to_srgb(l);
}

void main() {
    vec4 c = texture(u_tex, v_uv);
    vec3 lab = rgb_to_lab(c.bgr);
    vec3 matched = (lab - u_src_mean) / u_src_std * u_dst_std + u_dst_mean;
    vec3 rgb = lab_to_rgb(mix(lab, matched, u_transfer));
    f_color = vec4(rgb.bgr, c.a * texture(u_region, v_uv).r * u_opacity);
}
