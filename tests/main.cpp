// The one doctest main for the whole suite; ctest runs each test case through doctest_discover_tests.
// No tests here: they live in folders that mirror the sources.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
