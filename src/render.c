/* render.c — placeholder */
#include "internal.h"
