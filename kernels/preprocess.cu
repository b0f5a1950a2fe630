// uint8 BGR frames (B, H, W, 3) -> letterboxed, ImageNet-normalised float32 RGB (B, 3, out_h, out_w).
// Sampling (per axis, identical in the CPU twin kernels/preprocess.py): output index o of the content
// maps to the source centre c = (o + 0.5) * f - 0.5 with f = src / content; taps j in
// [ceil(c - s), floor(c + s)] clipped to the image, weight max(0, 1 - |j - c| / s) with s = max(f, 1),
// weights normalised. s = 1 is bilinear with half-pixel centres; s = f > 1 is the antialiased triangle
// filter of the downscale (PIL / torch antialias=True), so strong downscales do not alias.

struct Taps {
    int first;
    int last;
    float centre;
    float support;
};

__device__ Taps taps_for(int o, int src, int content) {
    float f = (float)src / (float)content;
    Taps t;
    t.support = f > 1.0f ? f : 1.0f;
    t.centre = ((float)o + 0.5f) * f - 0.5f;
    t.first = max(0, (int)ceilf(t.centre - t.support));
    t.last = min(src - 1, (int)floorf(t.centre + t.support));
    return t;
}

__device__ float tap_weight(const Taps& t, int j) {
    return fmaxf(0.0f, 1.0f - fabsf((float)j - t.centre) / t.support);
}

extern "C" __global__ void letterbox_normalize(
    const unsigned char* src, float* dst, int batch, int src_h, int src_w, int out_h, int out_w,
    int top, int left, int content_h, int content_w,
    float mul_r, float mul_g, float mul_b, float add_r, float add_g, float add_b) {
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long plane = (long long)out_h * out_w;
    if (idx >= (long long)batch * plane) return;
    int b = (int)(idx / plane);
    int y = (int)((idx % plane) / out_w);
    int x = (int)(idx % out_w);
    float* out = dst + (long long)b * 3 * plane + (long long)y * out_w + x;
    int cy = y - top;
    int cx = x - left;
    if (cy < 0 || cy >= content_h || cx < 0 || cx >= content_w) {
        out[0] = 0.0f;
        out[plane] = 0.0f;
        out[2 * plane] = 0.0f;
        return;
    }
    Taps ty = taps_for(cy, src_h, content_h);
    Taps tx = taps_for(cx, src_w, content_w);
    float wx_sum = 0.0f;
    for (int j = tx.first; j <= tx.last; ++j) wx_sum += tap_weight(tx, j);
    const unsigned char* frame = src + (long long)b * src_h * src_w * 3;
    float acc_b = 0.0f, acc_g = 0.0f, acc_r = 0.0f, wy_sum = 0.0f;
    for (int i = ty.first; i <= ty.last; ++i) {
        float wy = tap_weight(ty, i);
        wy_sum += wy;
        const unsigned char* row = frame + (long long)i * src_w * 3;
        float row_b = 0.0f, row_g = 0.0f, row_r = 0.0f;
        for (int j = tx.first; j <= tx.last; ++j) {
            float wx = tap_weight(tx, j);
            row_b += wx * row[3 * j];
            row_g += wx * row[3 * j + 1];
            row_r += wx * row[3 * j + 2];
        }
        acc_b += wy * row_b;
        acc_g += wy * row_g;
        acc_r += wy * row_r;
    }
    float norm = 1.0f / (wx_sum * wy_sum);
    out[0] = acc_r * norm * mul_r + add_r;
    out[plane] = acc_g * norm * mul_g + add_g;
    out[2 * plane] = acc_b * norm * mul_b + add_b;
}
