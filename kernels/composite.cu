// Layer composite with per-person effects (the CPU twin and the full description are in
// kernels/composite.py). One thread per output pixel.
// people: (N, COL_COUNT) float32 rows, the layout of kernels.composite.Column. The EFFECT_, BACKGROUND_ and COL_
// names are #defines of kernels/composite.py (CUDA_DEFINES), which kernels/_cuda.py puts before this source.
// base_mode is a Background code; BLUR arrives as IMAGE, with image the blurred frame.

// Premultiplied B, G, R and alpha of one layer sample.
struct Sample {
    float c[3];
    float a;
};

__device__ Sample opaque(const unsigned char* bgr) {
    Sample s = {{(float)bgr[0], (float)bgr[1], (float)bgr[2]}, 1.0f};
    return s;
}

__device__ Sample mix(const Sample& u, const Sample& v, float t) {
    Sample s;
    for (int c = 0; c < 3; ++c) s.c[c] = t * u.c[c] + (1.0f - t) * v.c[c];
    s.a = t * u.a + (1.0f - t) * v.a;
    return s;
}

__device__ float box_distance(const float* row, int x, int y) {
    float dx = fmaxf(fmaxf(row[COL_X0] - (float)x, (float)x - row[COL_X1]), 0.0f);
    float dy = fmaxf(fmaxf(row[COL_Y0] - (float)y, (float)y - row[COL_Y1]), 0.0f);
    return sqrtf(dx * dx + dy * dy);
}

__device__ __forceinline__ unsigned char round_byte(float v) {
    return (unsigned char)(fminf(255.0f, fmaxf(0.0f, v)) + 0.5f);
}

extern "C" __global__ void composite(
    const unsigned char* frame, const float* alphas, const float* people, int count,
    const unsigned char* image, const unsigned char* own, const unsigned char* privacy, unsigned char* out,
    int h, int w, int channels, int base_mode, float base_b, float base_g, float base_r,
    int spotlight, float dim, int regions, float feather, int block) {
    long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long plane = (long long)h * w;
    if (p >= plane) return;
    int y = (int)(p / w);
    int x = (int)(p % w);
    Sample original = opaque(frame + 3 * p);

    Sample base;
    if (base_mode == BACKGROUND_ORIGINAL) {
        base = original;
    } else if (base_mode == BACKGROUND_IMAGE) {
        base = opaque(image + 3 * p);
    } else if (base_mode == BACKGROUND_COLOR) {
        base.c[0] = base_b; base.c[1] = base_g; base.c[2] = base_r; base.a = 1.0f;
    } else {
        base.c[0] = 0.0f; base.c[1] = 0.0f; base.c[2] = 0.0f; base.a = 0.0f;
    }

    Sample background = base;
    if (regions) {
        int first = -1, second = -1;
        float d1 = 0.0f, d2 = 0.0f;
        for (int i = 0; i < count; ++i) {
            const float* row = people + i * COL_COUNT;
            if (row[COL_X1] < row[COL_X0]) continue;
            float d = box_distance(row, x, y);
            if (first < 0 || d < d1) {
                second = first; d2 = d1; first = i; d1 = d;
            } else if (second < 0 || d < d2) {
                second = i; d2 = d;
            }
        }
        if (first >= 0) {
            int k1 = (int)people[first * COL_COUNT + COL_BACKGROUND];
            background = k1 >= 0 ? opaque(own + ((long long)k1 * plane + p) * 3) : base;
            if (second >= 0) {
                int k2 = (int)people[second * COL_COUNT + COL_BACKGROUND];
                Sample other = k2 >= 0 ? opaque(own + ((long long)k2 * plane + p) * 3) : base;
                float t = fminf(1.0f, fmaxf(0.0f, 0.5f + (d2 - d1) / (2.0f * feather)));
                background = mix(background, other, t);
            }
        }
    }

    float others = spotlight ? dim : 1.0f;
    float remaining = 1.0f;
    float acc[3] = {0.0f, 0.0f, 0.0f};
    float acc_a = 0.0f;
    for (int i = count - 1; i >= 0; --i) {
        float a = fminf(fmaxf(alphas[i * plane + p], 0.0f), remaining);
        remaining -= a;
        const float* row = people + i * COL_COUNT;
        int effect = (int)row[COL_EFFECT];
        Sample layer = original;
        if (effect == EFFECT_HIDE) {
            layer = background;
        } else if (effect == EFFECT_TINT) {
            float s = row[COL_STRENGTH];
            for (int c = 0; c < 3; ++c) layer.c[c] = (1.0f - s) * original.c[c] + s * row[COL_TINT_B + c];
        } else if (effect == EFFECT_BLUR) {
            layer = opaque(privacy + 3 * p);
        } else if (effect == EFFECT_PIXELATE) {
            int by = min(h - 1, (y / block) * block + block / 2);
            int bx = min(w - 1, (x / block) * block + block / 2);
            layer = opaque(privacy + 3 * ((long long)by * w + bx));
        }
        float m = effect == EFFECT_SPOTLIGHT ? 1.0f : others;
        for (int c = 0; c < 3; ++c) acc[c] += a * m * layer.c[c];
        acc_a += a * layer.a;
    }
    for (int c = 0; c < 3; ++c) acc[c] += remaining * others * background.c[c];
    acc_a += remaining * background.a;

    unsigned char* o = out + channels * p;
    if (channels == 3) {
        for (int c = 0; c < 3; ++c) o[c] = round_byte(acc[c]);
    } else {
        float inv = acc_a > 0.0f ? 1.0f / acc_a : 0.0f;
        for (int c = 0; c < 3; ++c) o[c] = round_byte(acc[c] * inv);
        o[3] = round_byte(acc_a * 255.0f);
    }
}
