"""History entries as the Dockerfile instructions a user wrote (builds/history.py), for both builders' forms,
and an image config's command, exec form and healthcheck as Docker shows them."""

from __future__ import annotations

import pytest

from builds.history import exec_form, go_list, healthcheck_text, instruction_text

CLASSIC = [
    ("/bin/sh -c #(nop)  ENV X=1", "ENV X=1"),
    ("/bin/sh -c #(nop) WORKDIR /app", "WORKDIR /app"),
    ("/bin/sh -c #(nop)  ARG VERSION", "ARG VERSION"),
    ("/bin/sh -c #(nop)  LABEL team=web", "LABEL team=web"),
    ("/bin/sh -c echo hi", "RUN echo hi"),
    ("/bin/sh -c apt-get update && apt-get install -y curl", "RUN apt-get update && apt-get install -y curl"),
    ("|1 TOKEN=*** /bin/sh -c make build", "RUN make build"),
    ("|2 A=1 B=2 /bin/sh -c make", "RUN make"),
    ("/bin/sh -c #(nop) ADD file:0123abcd in / ", "ADD file:0123abcd /"),
    ("/bin/sh -c #(nop) COPY dir:9f8e7d in /app ", "COPY dir:9f8e7d /app"),
    ('/bin/sh -c #(nop)  CMD ["python" "app.py"]', 'CMD ["python", "app.py"]'),
    ('/bin/sh -c #(nop)  CMD ["/bin/sh" "-c" "python app.py"]', "CMD python app.py"),
    ('/bin/sh -c #(nop)  ENTRYPOINT ["/entrypoint.sh"]', 'ENTRYPOINT ["/entrypoint.sh"]'),
    ("/bin/sh -c #(nop)  EXPOSE 8000", "EXPOSE 8000"),
    ("/bin/sh -c #(nop)  VOLUME [/data]", "VOLUME /data"),
    ("/bin/sh -c #(nop)  HEALTHCHECK &{[\"NONE\"] \"0s\" \"0s\" \"0s\" \"0s\" '\\x00'}", "HEALTHCHECK NONE"),
    # An exec-form RUN: the classic builder writes the arguments alone.
    ("echo hi", "RUN echo hi"),
]

BUILDKIT = [
    ("RUN /bin/sh -c echo hi # buildkit", "RUN echo hi"),
    ("RUN echo hi # buildkit", "RUN echo hi"),
    ("RUN |2 A=1 B=2 /bin/sh -c make # buildkit", "RUN make"),
    ("RUN --mount=type=cache,target=/root/.cache /bin/sh -c pip install -r requirements.txt # buildkit",
     "RUN --mount=type=cache,target=/root/.cache pip install -r requirements.txt"),
    ("RUN /bin/bash -o pipefail -c curl -s x | sh # buildkit", "RUN curl -s x | sh"),
    ("COPY . . # buildkit", "COPY . ."),
    ("COPY --from=builder /out /app # buildkit", "COPY --from=builder /out /app"),
    ("ADD alpine-minirootfs-3.19.1-x86_64.tar.gz / # buildkit", "ADD alpine-minirootfs-3.19.1-x86_64.tar.gz /"),
    ("ENV X=1", "ENV X=1"),
    ("WORKDIR /app", "WORKDIR /app"),
    ('CMD ["sh" "-c" "echo \\"hi\\""]', 'CMD ["sh", "-c", "echo \\"hi\\""]'),
    ('CMD ["/bin/sh" "-c" "python app.py"]', "CMD python app.py"),
    ("EXPOSE map[8000/tcp:{} 9000/udp:{}]", "EXPOSE 8000/tcp 9000/udp"),
    ("VOLUME [/data /logs]", "VOLUME /data /logs"),
    ("SHELL [/bin/bash -o pipefail -c]", 'SHELL ["/bin/bash", "-o", "pipefail", "-c"]'),
    ("HEALTHCHECK &{[\"CMD-SHELL\" \"curl -f http://localhost/ || exit 1\"] \"30s\" \"3s\" \"0s\" \"0s\" '\\x03'}",
     "HEALTHCHECK --interval=30s --timeout=3s --retries=3 CMD curl -f http://localhost/ || exit 1"),
    ("USER app", "USER app"),
]


@pytest.mark.parametrize(("created_by", "written"), CLASSIC)
def test_it_words_the_classic_builders_entries_as_written(created_by, written):
    assert instruction_text(created_by) == written


@pytest.mark.parametrize(("created_by", "written"), BUILDKIT)
def test_it_words_buildkits_entries_as_written(created_by, written):
    assert instruction_text(created_by) == written


def test_an_empty_entry_stays_empty():
    assert instruction_text("") == ""
    assert instruction_text(None) == ""


def test_go_lists_are_read_and_other_text_is_not():
    assert go_list('["sh" "-c" "a b"]') == ["sh", "-c", "a b"]
    assert go_list("[]") == []
    assert go_list("[/data]") is None
    assert go_list("make") is None


def test_commands_are_json_exec_form_never_python_reprs():
    assert exec_form(["sh", "-c", "echo 'hi'"]) == '["sh", "-c", "echo \'hi\'"]'
    assert exec_form(["python", "app.py"]) == '["python", "app.py"]'
    assert exec_form(None) == ""
    assert exec_form("legacy string") == "legacy string"


def test_a_config_healthcheck_reads_like_the_dockerfiles():
    check = {"Test": ["CMD-SHELL", "curl -f localhost || exit 1"], "Interval": 30_000_000_000,
             "Timeout": 3_000_000_000, "Retries": 3}
    assert healthcheck_text(check) == "--interval=30s --timeout=3s --retries=3 CMD curl -f localhost || exit 1"
    assert healthcheck_text({"Test": ["CMD", "curl", "-f", "x"]}) == 'CMD ["curl", "-f", "x"]'
    assert healthcheck_text({"Test": ["NONE"]}) == "NONE"
    assert healthcheck_text(None) == ""
