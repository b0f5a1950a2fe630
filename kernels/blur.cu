// Halo-free masked box blur (the CPU twin is kernels/blur.py):
//   out = (box(I * v) + delta * box(I)) / (box(v) + delta * box(1)),  v = 1 - min(1, sum_i alpha_i)
// with a (2r + 1)^2 box clipped at the image border. delta keeps the division defined where the whole
// window is covered by people (there the plain box blur of the frame is returned).
// of_people inverts the weight, v = min(1, sum_i alpha_i): the people blurred without the background.

extern "C" __global__ void visible_weight(const float* alphas, float* weight, int people, long long plane, int of_people) {
    long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= plane) return;
    float cover = 0.0f;
    for (int i = 0; i < people; ++i) cover += alphas[i * plane + p];
    weight[p] = of_people ? fminf(1.0f, cover) : 1.0f - fminf(1.0f, cover);
}

// Horizontal pass: tmp[y, x, 0..6] = row sums of (I * v) B, G, R, v, I B, G, R over [x - r, x + r].
extern "C" __global__ void blur_rows(const unsigned char* frame, const float* weight, float* tmp, int h, int w, int r) {
    long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= (long long)h * w) return;
    int x = (int)(p % w);
    long long row = p - x;
    float s[7] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    for (int j = max(0, x - r); j <= min(w - 1, x + r); ++j) {
        long long q = row + j;
        float v = weight[q];
        for (int c = 0; c < 3; ++c) {
            float value = (float)frame[3 * q + c];
            s[c] += value * v;
            s[4 + c] += value;
        }
        s[3] += v;
    }
    for (int c = 0; c < 7; ++c) tmp[7 * p + c] = s[c];
}

// Vertical pass and the ratio, rounded to uint8 BGR.
extern "C" __global__ void blur_cols(const float* tmp, unsigned char* out, int h, int w, int r, float delta) {
    long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= (long long)h * w) return;
    int y = (int)(p / w);
    int x = (int)(p % w);
    float s[7] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    for (int i = max(0, y - r); i <= min(h - 1, y + r); ++i) {
        const float* t = tmp + 7 * ((long long)i * w + x);
        for (int c = 0; c < 7; ++c) s[c] += t[c];
    }
    float count = (float)((min(h - 1, y + r) - max(0, y - r) + 1) * (min(w - 1, x + r) - max(0, x - r) + 1));
    float denominator = s[3] + delta * count;
    for (int c = 0; c < 3; ++c) {
        float v = (s[c] + delta * s[4 + c]) / denominator;
        out[3 * p + c] = (unsigned char)(fminf(255.0f, fmaxf(0.0f, v)) + 0.5f);
    }
}
