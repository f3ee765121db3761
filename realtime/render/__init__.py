"""OpenGL rendering of effects on reconstructed faces: context, renderer, effects,
face swap and the live window. GLSL lives in shaders/."""
