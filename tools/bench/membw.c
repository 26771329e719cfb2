// Memory read bandwidth: T threads each sum their slice of a buffer far larger than the caches,
// the way a decode step streams the weights once. Prints one JSON object with the best and the
// median GB/s (1 GB = 1e9 bytes) over the passes.
//
//   gcc -O3 -march=native -pthread membw.c -o membw && ./membw 2 1024 10
//   (threads, buffer MiB, passes)
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const uint64_t *data;
    size_t count;
    uint64_t sum;
    pthread_barrier_t *start;
} Slice;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Eight independent accumulators: the compiler vectorizes the loop (-O3 -march=native), so
// the adds keep up with memory and the loads are the limit.
static void *sum_slice(void *arg) {
    Slice *s = arg;
    pthread_barrier_wait(s->start);
    uint64_t a[8] = {0};
    const uint64_t *p = s->data;
    size_t n = s->count & ~(size_t)7;
    for (size_t i = 0; i < n; i += 8)
        for (int k = 0; k < 8; k++) a[k] += p[i + k];
    uint64_t total = 0;
    for (int k = 0; k < 8; k++) total += a[k];
    for (size_t i = n; i < s->count; i++) total += p[i];
    s->sum = total;
    pthread_barrier_wait(s->start);
    return NULL;
}

static int cmp(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    size_t mib = argc > 2 ? (size_t)atol(argv[2]) : 1024;
    int passes = argc > 3 ? atoi(argv[3]) : 10;
    if (threads < 1 || threads > 256 || mib < 16 || passes < 1) {
        fprintf(stderr, "usage: membw [threads 1-256] [buffer MiB >= 16] [passes >= 1]\n");
        return 2;
    }
    size_t bytes = mib << 20, count = bytes / sizeof(uint64_t);
    uint64_t *buf = aligned_alloc(64, bytes);
    if (!buf) { fprintf(stderr, "membw: cannot allocate %zu MiB\n", mib); return 1; }
    for (size_t i = 0; i < count; i++) buf[i] = i;  // touch every page before timing

    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
    double *rates = calloc((size_t)passes, sizeof(double));
    uint64_t check = 0;
    for (int pass = 0; pass < passes; pass++) {
        Slice slices[256];
        pthread_t ids[256];
        size_t per = count / (size_t)threads;
        for (int t = 0; t < threads; t++) {
            slices[t] = (Slice){buf + per * (size_t)t, t == threads - 1 ? count - per * (size_t)t : per, 0, &start};
            pthread_create(&ids[t], NULL, sum_slice, &slices[t]);
        }
        pthread_barrier_wait(&start);  // all threads created: go
        double t0 = now();
        pthread_barrier_wait(&start);  // all slices summed
        double t1 = now();
        for (int t = 0; t < threads; t++) { pthread_join(ids[t], NULL); check += slices[t].sum; }
        rates[pass] = (double)bytes / (t1 - t0) / 1e9;
    }
    qsort(rates, (size_t)passes, sizeof(double), cmp);
    // The checksum keeps the sums alive (and shows the whole buffer was read).
    printf("{\"threads\": %d, \"buffer_bytes\": %zu, \"passes\": %d, \"best_gb_per_s\": %.3f, \"median_gb_per_s\": %.3f, \"checksum\": %llu}\n",
           threads, bytes, passes, rates[passes - 1], rates[passes / 2], (unsigned long long)check);
    free(rates);
    free(buf);
    return 0;
}
