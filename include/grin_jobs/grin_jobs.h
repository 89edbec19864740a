#pragma once
// grin-jobs as a library: every public header. See run.h.

#include "grin_jobs/cancel.h"
#include "grin_jobs/observer.h"
#include "grin_jobs/options.h"
#include "grin_jobs/reports.h"
#include "grin_jobs/run.h"
#include "grin_jobs/status.h"
