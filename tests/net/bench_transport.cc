// Placeholder: the benchmark driver is written after the tests pass.
int main() { return 0; }
