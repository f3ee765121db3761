#version 330
#include "occlusion.glsl"
// Face swap: the source face's de-lit albedo (BGRA; rgb = sqrt(albedo / albedo max),
// alpha = the swap's region minus the live eyeballs and inside of the mouth) times
// the live light of swap.vert; the edge fades where the surface turns away from the
// camera, and what covers the face (occlusion.glsl) stays in front. With a face shape
// (u_warped) the frame under the mesh is drawn warped with it (the live eyes, mouth
// and jaw line move to the new shape), fading back to the frame at the mesh's edge.
// u_chroma < 1 turns the albedo's colour toward the source's skin chroma (u_skin_chroma,
// linear BGR over its luminance), keeping each texel's luminance: a colourless live
// face gets a face as colourless as its own (realtime.render.effects.swap.CHROMA_MATCH).
// u_detail < 1 turns the source's fine skin detail down (swap_clean.DetailMatch).
// On the inner lips and the lids (u_live_bands) the live frame decides, against the
// live skin's colour (u_live_skin): the mouth's inside and the eye show through.
uniform sampler2D u_tex;
uniform sampler2D u_frame;
uniform bool u_warped;
uniform float u_opacity;
uniform float u_chroma;
uniform vec3 u_skin_chroma;
uniform float u_detail;      // share of the source's fine skin detail kept (swap_clean.DetailMatch)
uniform float u_detail_lod;  // the mip level that holds the skin without that detail
uniform sampler2D u_live_bands;  // r: the inner lips, g: the lids: where the live frame decides (swap.live_bands)
uniform vec3 u_live_skin;    // the live skin's colour, BGR as the frame holds it

const vec3 LUMA = vec3(0.11, 0.59, 0.30);  // BGR, as realtime.render.lighting.LUMA

in vec2 v_uv;
in vec3 v_light;
in float v_facing;
in vec2 v_frame;
in float v_warp;
in vec2 v_band;
out vec4 f_color;

void main() {
    vec4 t = texture(u_tex, v_uv);
    vec3 albedo = t.rgb * t.rgb;  // the texture is sqrt-coded
    // Fine skin detail turned down to what the live camera shows of its own skin; the
    // features' strong edges (brows, lids, lips) keep theirs.
    vec3 low = textureLod(u_tex, v_uv, u_detail_lod).rgb;
    low *= low;
    vec3 detail = albedo - low;
    float strong = smoothstep(0.15, 0.35, abs(dot(detail, LUMA)) / max(dot(low, LUMA), 1e-3));
    albedo = low + mix(u_detail, 1.0, strong) * detail;
    albedo = mix(dot(albedo, LUMA) * u_skin_chroma, albedo, u_chroma);
    vec3 face = min(sqrt(albedo) * v_light, vec3(1.0));
    float a = t.a * v_facing * u_opacity * visible();
    // On the inner lips and the lids, the live mouth and eyes show where the live frame
    // has them: the mouth's dark and the iris (much darker than the live skin), teeth and
    // the eye's white (as bright, far less red).
    vec2 band = texture(u_live_bands, v_band).rg;
    if (band.r + band.g > 0.0) {  // elsewhere (most of the face) nothing to read
        vec3 live = texture(u_frame, v_frame).rgb;
        float q = dot(live, LUMA) / max(dot(u_live_skin, LUMA), 1e-3);
        float red = (live.z / max(live.y, 1e-3)) / max(u_live_skin.z / max(u_live_skin.y, 1e-3), 1e-3);
        float mouth = max(1.0 - smoothstep(0.25, 0.45, q), (1.0 - smoothstep(0.85, 0.95, red)) * smoothstep(0.7, 0.9, q));
        float eye = max(1.0 - smoothstep(0.35, 0.5, q), (1.0 - smoothstep(0.88, 0.95, red)) * smoothstep(0.75, 0.9, q));
        a *= (1.0 - band.r * mouth) * (1.0 - band.g * eye);
    }
    if (!u_warped) {
        if (a < 0.02) discard;  // the fade's last 2 %: the frame as it is, not a 1-level change
        f_color = vec4(face, a);
        return;
    }
    // a * face + (1 - a) * (w * warped frame + (1 - w) * frame), as one blended colour.
    float w = v_warp * u_opacity;
    float alpha = 1.0 - (1.0 - a) * (1.0 - w);
    vec3 warped = texture(u_frame, v_frame).rgb;
    f_color = vec4((a * face + (1.0 - a) * w * warped) / max(alpha, 1e-4), alpha);
}
