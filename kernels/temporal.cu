// Temporal fusion of per-track mattes; the CPU twin is kernels/temporal.py.
// The change test is per channel in integers, max over B, G, R of |I_t - I_prev| > tau, so CPU and GPU
// agree exactly. It refines the original design's luma test on purpose: luma alone misses isoluminant motion.
// Motion compensation (see temporal.py): track i reads its previous state and the previous frame of its
// change test at p - shift_i, so a person who translates is static after compensation. Evidence (see
// temporal.py): a carried prediction never changes the matte by itself (it may start a wait that a fresh one
// completes), and a track's first fresh prediction after an unseen change is taken.

// max over B, G, R of |frame[p] - prev_frame[q]| for pixel indices p and q.
__device__ __forceinline__ int largest_change(const unsigned char* frame, const unsigned char* prev_frame,
                                              long long p, long long q) {
    int moved = 0;
    for (int k = 0; k < 3; ++k) moved = max(moved, abs((int)frame[3 * p + k] - (int)prev_frame[3 * q + k]));
    return moved;
}

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
            long long p = (long long)y * w + x;
            if ((float)largest_change(frame, prev_frame, p, p) > tau) changed = 1;
            for (int k = 0; k < 3; ++k) prev_frame[3 * p + k] = frame[3 * p + k];
        }
    }
    cells[c] = changed;
    if (changed) atomicAdd(count, 1);
}

// One thread per (track, cell): cells[track, c] = 1 where a pixel of the cell changed against the previous
// frame at p - shift of the track; a pixel whose source lies outside the frame counts as changed.
// Run before frame_changes, which overwrites prev_frame.
extern "C" __global__ void track_changes(
    const unsigned char* frame, const unsigned char* prev_frame, const int* shifts, unsigned char* cells,
    int tracks, int h, int w, int s, int cells_h, int cells_w, float tau) {
    long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long plane = (long long)cells_h * cells_w;
    if (k >= tracks * plane) return;
    int track = (int)(k / plane);
    int c = (int)(k % plane);
    int dy = shifts[2 * track];
    int dx = shifts[2 * track + 1];
    int y0 = (c / cells_w) * s;
    int x0 = (c % cells_w) * s;
    unsigned char changed = 0;
    for (int y = y0; y < min(h, y0 + s) && !changed; ++y) {
        for (int x = x0; x < min(w, x0 + s) && !changed; ++x) {
            int sy = y - dy;
            int sx = x - dx;
            changed = sy < 0 || sy >= h || sx < 0 || sx >= w
                      || (float)largest_change(frame, prev_frame, (long long)y * w + x, (long long)sy * w + sx) > tau;
        }
    }
    cells[k] = changed;
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

// Guarded causal rule, one thread per (track, pixel); matte, age and pend are the state, updated in place;
// pend is which way (ROSE, FELL: kernels/temporal.py) the prediction left the held value last frame.
// Track i reads its previous state at p - shifts[i] from prev_* (tracks, prev_h, prev_w), a copy of the
// state whose top-left lies at origins[i] in the frame (0 outside it; the state arrays themselves when
// every shift is 0), and its change map at cells + i * cells_stride (stride 0: one map shared by every
// track); a blind track (empty prediction) is static everywhere. With per-track maps (stride > 0) a pixel
// that frame_cells, the unshifted map, calls still reads its own previous state: what did not change in
// place did not move, whatever the track's shift says.
extern "C" __global__ void fuse_causal(
    const float* alpha, float* matte, unsigned char* age, unsigned char* pend, const float* prev_matte,
    const unsigned char* prev_age, const unsigned char* prev_pend, const int* origins, int prev_h, int prev_w,
    const unsigned char* new_track, const unsigned char* frame_cells,
    const int* shifts, const unsigned char* blind, const unsigned char* cells, long long cells_stride,
    const int* count, int tracks, int h, int w, int s, int cells_h, int cells_w, float cut_cells, int force_reset,
    float eps, int max_age, float blend, const unsigned char* fresh, const unsigned char* dirty, int evidence,
    float low, float high) {
    long long idx;
    int track, y, x;
    if (!track_pixel(tracks, h, w, &idx, &track, &y, &x)) return;
    bool reset = force_reset || (float)count[0] > cut_cells || new_track[track];
    bool read = !evidence || fresh[track];  // else the prediction was carried from an earlier frame: no news
    bool news = evidence && read && !blind[track];
    bool here = cells_stride != 0 && !blind[track] && !dilated(frame_cells, y, x, s, cells_h, cells_w);
    int sy = y - origins[2 * track] - (here ? 0 : shifts[2 * track]);
    int sx = x - origins[2 * track + 1] - (here ? 0 : shifts[2 * track + 1]);
    bool inside = sy >= 0 && sy < prev_h && sx >= 0 && sx < prev_w;
    long long src = ((long long)track * prev_h + sy) * prev_w + sx;
    float a = alpha[idx];
    float q = inside ? prev_matte[src] : 0.0f;
    int held = inside ? prev_age[src] : 0;
    int waited = inside ? prev_pend[src] : 0;
    float out = a;
    int new_age = 0;
    int new_pend = 0;
    // where nothing is predicted and nothing held there is no state (the CPU twin skips such pixels)
    bool empty = a == 0.0f && q == 0.0f;
    bool still = blind[track] || here || !dilated(cells + track * cells_stride, y, x, s, cells_h, cells_w);
    if (news && dilated(dirty + (long long)track * cells_h * cells_w, y, x, s, cells_h, cells_w)) still = false;
    if (!reset && !empty && still) {
        int moved = fabsf(a - q) <= eps ? AGREES : (a > q ? ROSE : FELL);
        if (moved == AGREES) {
            if (held < max_age) {
                out = q + blend * (a - q);
                new_age = held + 1;
            }
        } else if (!read) {  // held; it starts a wait where none is pending, which a fresh prediction completes
            if (held < max_age) {
                out = q;
                new_age = held + 1;
                new_pend = waited != AGREES ? waited : moved;
            }
        } else if (waited != moved) {  // taken once it goes the same way a second frame
            out = q;
            new_age = held;
            new_pend = moved;
        }
    }
    matte[idx] = saturate(out, low, high);
    age[idx] = (unsigned char)new_age;
    pend[idx] = (unsigned char)new_pend;
}

// MaGGIe's two-sided rule for frame t, run when t + 1 arrives: keep the previous fused matte where the
// forward (t-1 -> t) and backward (t -> t+1) change maps are both static and the next prediction agrees
// with it (moved by blend towards the current prediction when that agrees too); otherwise take the
// current prediction.
extern "C" __global__ void fuse_exact(
    const float* alpha, const float* alpha_next, float* matte, const unsigned char* new_track,
    const unsigned char* has_next, const unsigned char* cells_fwd, const int* count_fwd,
    const unsigned char* cells_bwd, const int* count_bwd, int tracks, int h, int w, int s, int cells_h,
    int cells_w, float cut_cells, int force_reset, float eps, float blend, float low, float high) {
    long long idx;
    int track, y, x;
    if (!track_pixel(tracks, h, w, &idx, &track, &y, &x)) return;
    bool fresh = force_reset || (float)count_fwd[0] > cut_cells || (float)count_bwd[0] > cut_cells
                 || new_track[track] || !has_next[track];
    float out = alpha[idx];
    if (!fresh && !dilated(cells_fwd, y, x, s, cells_h, cells_w) && !dilated(cells_bwd, y, x, s, cells_h, cells_w)
        && fabsf(alpha_next[idx] - matte[idx]) <= eps) {
        float q = matte[idx];
        out = fabsf(out - q) <= eps ? q + blend * (out - q) : q;
    }
    matte[idx] = saturate(out, low, high);
}
