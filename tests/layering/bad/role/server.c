/* fixture: a role including another role */
#include "role/client.h"
