"""protocols.sections() and _usable() are memoised on the registry's state (testtime5: Config reads a
protocol's section through sections() at every field read, and validating one config walked every protocol
thousands of times). A memo keyed on too little would keep a protocol's section after it is gone, or miss a
new one: both directions are checked here, with a built-in-style module added to REGISTRY and taken away."""
from tallysim import config, protocols

MODULE = '''from dataclasses import dataclass
from tallysim.fields import floats
from tallysim.protocols import Traits
TRAITS = Traits(sections={"ttfive": "TtFiveConfig"})


@dataclass(frozen=True)
class TtFiveConfig:
    x: float = floats(0.5, "(0, 1]")
'''


def test_sections_follow_the_registry_both_ways(tmp_path, monkeypatch):
    before = protocols.sections()
    assert "ttfive" not in before
    (tmp_path / "ttfive.py").write_text(MODULE)
    with monkeypatch.context() as m:
        m.setattr(protocols, "__path__", [*protocols.__path__, str(tmp_path)])
        m.setitem(protocols.REGISTRY, "ttfive", "ttfive:make")
        assert protocols.sections()["ttfive"].__name__ == "TtFiveConfig"        # the new one, not the memo
        assert "ttfive" in protocols.names() and protocols.section_owners("ttfive") == ("ttfive",)
        assert config.Config().ttfive.x == 0.5                                  # Config reads it
    assert protocols.sections() == before                                        # gone with its protocol
    # a caller that changes the returned dict does not change the memo
    protocols.sections().pop("fedavgm")
    assert "fedavgm" in protocols.sections()
