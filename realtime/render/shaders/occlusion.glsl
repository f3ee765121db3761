// What covers the face (a hand, hair, glasses, a microphone) stays in front of the
// effect: the face's visibility map from the occlusion network (realtime.occlusion),
// sampled where this fragment falls in the frame, multiplies the effect's alpha.
// Linear filtering of the coarse map and the smoothstep give soft edges.
uniform sampler2D u_visible;  // probability that the face shows, per map pixel
uniform mat3 u_to_visible;    // frame pixel (x, y, 1) -> the map's texture coordinates
uniform bool u_occlusion;     // false: no map, the whole face is drawn

float visible() {
    if (!u_occlusion) return 1.0;
    vec2 st = (u_to_visible * vec3(gl_FragCoord.xy - 0.5, 1.0)).xy;
    return smoothstep(0.25, 0.75, texture(u_visible, st).r);
}
