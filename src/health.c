/* health.c — placeholder */
#include "internal.h"
