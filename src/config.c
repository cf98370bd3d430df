/* config.c — placeholder */
#include "internal.h"
