// Outward feather: a soft dilation of each person's alpha (the CPU twin is kernels/feather.py),
//   out(p) = max over |dx|, |dy| <= r of alpha(p + (dx, dy)) * f(dx) * f(dy),  f(d) = 1 - |d| / (r + 1),
// computed separably (rows, then columns). f(0) = 1, so out >= alpha: it never erodes into the person.

extern "C" __global__ void feather_rows(const float* alphas, float* tmp, long long total, int w, int r) {
    long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= total) return;
    int x = (int)(p % w);
    long long row = p - x;
    float best = 0.0f;
    for (int j = max(0, x - r); j <= min(w - 1, x + r); ++j)
        best = fmaxf(best, alphas[row + j] * (1.0f - (float)abs(j - x) / (float)(r + 1)));
    tmp[p] = best;
}

extern "C" __global__ void feather_cols(const float* tmp, float* out, long long total, int h, int w, int r) {
    long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= total) return;
    long long plane = (long long)h * w;
    int y = (int)((p % plane) / w);
    long long column = p - (long long)y * w;
    float best = 0.0f;
    for (int i = max(0, y - r); i <= min(h - 1, y + r); ++i)
        best = fmaxf(best, tmp[column + (long long)i * w] * (1.0f - (float)abs(i - y) / (float)(r + 1)));
    out[p] = best;
}
