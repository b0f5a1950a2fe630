// Temporal fusion of per-track mattes (DESIGN section 4); the CPU twin is kernels/temporal.py.
// The change test is per channel in integers, max over B, G, R of |I_t - I_prev| > tau, so CPU and GPU
// agree exactly. It refines DESIGN section 4's luma test on purpose: luma alone misses isoluminant motion.

// One thread per s x s cell: cells[c] = 1 where any pixel's largest per-channel change exceeds tau;
// prev_frame (H, W, 3) becomes this frame; count (zeroed by the caller) receives the number of changed cells.
extern "C" __global__ void frame_changes(
    const unsigned char* frame, unsigned char* prev_frame, unsigned char* cells, int* count,
    int h, int w, int s, int cells_h, int cells_w, float tau) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cells_h * cells_w) return;
    int y0 = (c / cells_w) * s;
    int x0 = (c % cells_w) * s;
    int y1 = min(h, y0 + s);
    int x1 = min(w, x0 + s);
    unsigned char changed = 0;
    for (int y = y0; y < y1; ++y) {
        for (int x = x0; x < x1; ++x) {
            long long p = 3 * ((long long)y * w + x);
            int moved = 0;
            for (int k = 0; k < 3; ++k) {
                unsigned char value = frame[p + k];
                moved = max(moved, abs((int)value - (int)prev_frame[p + k]));
                prev_frame[p + k] = value;
            }
            if ((float)moved > tau) changed = 1;
        }
    }
    cells[c] = changed;
    if (changed) atomicAdd(count, 1);
}

// 3x3 max-dilation of the cell map, read at the cell of pixel (y, x).
__device__ unsigned char dilated(const unsigned char* cells, int y, int x, int s, int cells_h, int cells_w) {
    int cy = y / s;
    int cx = x / s;
    for (int i = max(0, cy - 1); i <= min(cells_h - 1, cy + 1); ++i)
        for (int j = max(0, cx - 1); j <= min(cells_w - 1, cx + 1); ++j)
            if (cells[i * cells_w + j]) return 1;
    return 0;
}

// This thread's (track, pixel) of a (tracks, h, w) launch; false for the threads past the end.
__device__ __forceinline__ bool track_pixel(int tracks, int h, int w, long long* idx, int* track, int* y, int* x) {
    *idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long plane = (long long)h * w;
    if (*idx >= tracks * plane) return false;
    *track = (int)(*idx / plane);
    *y = (int)((*idx % plane) / w);
    *x = (int)(*idx % w);
    return true;
}

__device__ __forceinline__ float saturate(float v, float low, float high) {
    if (v <= low) return 0.0f;
    if (v >= high) return 1.0f;
    return v;
}

// Guarded causal rule, one thread per (track, pixel); matte, age and pend are the state, updated in place.
extern "C" __global__ void fuse_causal(
    const float* alpha, float* matte, unsigned char* age, unsigned char* pend, const unsigned char* new_track,
    const unsigned char* cells, const int* count, int tracks, int h, int w, int s, int cells_h, int cells_w,
    float cut_cells, int force_reset, float eps, int max_age, float blend, float low, float high) {
    long long idx;
    int track, y, x;
    if (!track_pixel(tracks, h, w, &idx, &track, &y, &x)) return;
    bool reset = force_reset || (float)count[0] > cut_cells || new_track[track];
    float a = alpha[idx];
    float q = matte[idx];
    float out = a;
    int new_age = 0;
    int new_pend = 0;
    // where nothing is predicted and nothing held there is no state (the CPU twin skips such pixels)
    bool empty = a == 0.0f && q == 0.0f;
    if (!reset && !empty && !dilated(cells, y, x, s, cells_h, cells_w)) {
        if (fabsf(a - q) <= eps) {
            if (age[idx] < max_age) {
                out = q + blend * (a - q);
                new_age = age[idx] + 1;
            }
        } else if (pend[idx] == 0) {
            out = q;
            new_age = age[idx];
            new_pend = 1;
        }
    }
    matte[idx] = saturate(out, low, high);
    age[idx] = (unsigned char)new_age;
    pend[idx] = (unsigned char)new_pend;
}

// MaGGIe's two-sided rule for frame t, run when t + 1 arrives: keep the previous fused matte where the
// forward (t-1 -> t) and backward (t -> t+1) change maps are both static and the next prediction
// agrees with it; otherwise take the current prediction.
extern "C" __global__ void fuse_exact(
    const float* alpha, const float* alpha_next, float* matte, const unsigned char* new_track,
    const unsigned char* has_next, const unsigned char* cells_fwd, const int* count_fwd,
    const unsigned char* cells_bwd, const int* count_bwd, int tracks, int h, int w, int s, int cells_h,
    int cells_w, float cut_cells, int force_reset, float eps, float low, float high) {
    long long idx;
    int track, y, x;
    if (!track_pixel(tracks, h, w, &idx, &track, &y, &x)) return;
    bool fresh = force_reset || (float)count_fwd[0] > cut_cells || (float)count_bwd[0] > cut_cells
                 || new_track[track] || !has_next[track];
    float out = alpha[idx];
    if (!fresh && !dilated(cells_fwd, y, x, s, cells_h, cells_w) && !dilated(cells_bwd, y, x, s, cells_h, cells_w)
        && fabsf(alpha_next[idx] - matte[idx]) <= eps) {
        out = matte[idx];
    }
    matte[idx] = saturate(out, low, high);
}
