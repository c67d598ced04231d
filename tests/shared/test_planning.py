from shared.planning import plan_chunks
from shared.schemas import JobCreate


def _spec(prompts: int, n: int, greedy: bool = True) -> JobCreate:
    return JobCreate.model_validate(
        {
            "model": "m",
            "prompts": [{"id": str(i), "prompt": "p", "reference": "r"} for i in range(prompts)],
            "sampling": {"n": n},
            "greedy": greedy,
        }
    )


def test_every_draw_index_is_planned_exactly_once() -> None:
    spec = _spec(prompts=5, n=700)
    chunks = plan_chunks("j", spec, chunk_max_n=256, chunk_draws=1000)
    seen: dict[int, list[int]] = {}
    for chunk in chunks:
        if chunk.greedy:
            continue
        for sl in chunk.slices:
            assert 1 <= sl.count <= 256
            seen.setdefault(sl.prompt_index, []).extend(range(sl.start, sl.start + sl.count))
        assert sum(sl.count for sl in chunk.slices) <= 1000
    assert {p: sorted(ix) for p, ix in seen.items()} == {p: list(range(700)) for p in range(5)}
    assert [c.chunk_id for c in chunks] == list(range(len(chunks)))


def test_greedy_chunk_comes_first_and_covers_every_prompt() -> None:
    chunks = plan_chunks("j", _spec(prompts=3, n=4), chunk_max_n=256, chunk_draws=4096)
    assert chunks[0].greedy and [s.prompt_index for s in chunks[0].slices] == [0, 1, 2]
    assert len(chunks) == 2  # small n: all prompts share one sampling chunk


def test_no_greedy_chunk_when_not_asked() -> None:
    chunks = plan_chunks(
        "j", _spec(prompts=2, n=300, greedy=False), chunk_max_n=256, chunk_draws=256
    )
    assert not any(c.greedy for c in chunks)
    assert [(s.prompt_index, s.start, s.count) for c in chunks for s in c.slices] == [
        (0, 0, 256),
        (0, 256, 44),
        (1, 0, 256),
        (1, 256, 44),
    ]
