/* clock.h — monotonic and wall clocks, ISO 8601 time stamps, sleeping. */
#ifndef PQC_CLOCK_H
#define PQC_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in ns: for durations and deadlines. */
int64_t pqc_now_ns(void);

/* CLOCK_MONOTONIC_COARSE in ms: read through the vDSO without touching the
 * hardware counter (a few ns), resolution a few ms; for limits counted in
 * seconds on paths that run per query. */
int64_t pqc_now_coarse_ms(void);

/* CLOCK_REALTIME in ms since the Unix epoch: for time stamps only. */
int64_t pqc_wall_ms(void);

/* Room for any ISO 8601 stamp pqc_iso8601() writes, NUL included. */
#define PQC_ISO8601_LEN 64

/* Writes wall_ms as UTC with milliseconds ("2026-11-26T14:00:00.000Z") into
 * out and returns out. A time gmtime(3) cannot represent gives the epoch. */
char *pqc_iso8601(int64_t wall_ms, char out[PQC_ISO8601_LEN]);

/* Sleeps ms milliseconds (0 or less: returns at once), resuming after
 * signal handlers. */
void pqc_sleep_ms(int64_t ms);

#endif
