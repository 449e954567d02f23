/* fixture: the layering check must reject this tree */
#include "base/loop.h"
