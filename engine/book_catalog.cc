// BookCatalog is an interface only; this file anchors it in the engine library.
#include "engine/book_catalog.h"
