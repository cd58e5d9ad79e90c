// SPDX-License-Identifier: GPL-2.0
/*
 * Creates rkmem's tracepoints (rkmem_trace.h) and the rust_do_trace_* functions that
 * rust/interfaces/trace.rs calls once an event's static key is on.
 */
#define CREATE_TRACE_POINTS
#define CREATE_RUST_TRACE_POINTS
#include "rkmem_trace.h"
