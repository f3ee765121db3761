#version 330
// Polished metal: the mask's colour lit from the mesh normals, with a fake sky/floor
// reflection so that turning the head moves the highlights. Colours are BGR.
uniform sampler2D u_tex;
uniform sampler2D u_region;
uniform float u_opacity;

in vec2 v_uv;
in vec3 v_normal;
out vec4 f_color;

void main() {
    vec4 base = texture(u_tex, v_uv);
    vec3 n = normalize(v_normal);
    vec3 view = vec3(0.0, 0.0, 1.0);
    vec3 light = normalize(vec3(-0.45, -0.6, 1.0));  // upper left, in front (y is down)
    vec3 h = normalize(light + view);
    float diffuse = max(dot(n, light), 0.0);
    float spec = pow(max(dot(n, h), 0.0), 60.0);
    vec3 r = reflect(-view, n);
    float up = clamp(0.5 - 0.9 * r.y, 0.0, 1.0);
    vec3 floor_bgr = vec3(0.10, 0.14, 0.20);
    vec3 sky_bgr = vec3(1.00, 0.93, 0.85);
    vec3 env = mix(floor_bgr, sky_bgr, smoothstep(0.25, 0.75, up));
    float rim = pow(1.0 - max(n.z, 0.0), 2.0);
    vec3 c = base.rgb * (0.18 + 0.5 * diffuse) + base.rgb * env * 0.55 + vec3(spec) + rim * 0.25 * sky_bgr;
    f_color = vec4(min(c, vec3(1.0)), base.a * texture(u_region, v_uv).r * u_opacity);
}
