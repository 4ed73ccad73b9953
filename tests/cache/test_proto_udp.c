/* placeholder until the real test lands: meson treats 77 as skipped */
int main(void)
{
	return 77;
}
