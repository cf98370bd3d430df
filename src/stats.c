/* stats.c — placeholder */
#include "internal.h"
