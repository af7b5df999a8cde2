//! Who hears whom on a call with more than two parties: the caller, the
//! agent, a third party brought in by the agent (110, a unit, another seat)
//! and a supervisor. The actor describes who is on the call in a
//! [`Roster`]; [`plan`] says what each party's stream hears, which the
//! media engine then mixes in linear PCM each 20 ms tick. Pure, so every
//! combination is tested here rather than through phones.

use crate::call::control::MonitorMode;

/// A party on a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    Caller,
    Agent,
    /// The line or person the agent brought in.
    Target,
    Supervisor,
}

impl Party {
    pub fn parse(text: &str) -> Option<Party> {
        match text {
            "caller" => Some(Party::Caller),
            "agent" => Some(Party::Agent),
            "target" => Some(Party::Target),
            "supervisor" => Some(Party::Supervisor),
            _ => None,
        }
    }
}

/// How the third party takes part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetRole {
    /// Attended transfer, first half: agent and target talk while the
    /// caller holds.
    Consult,
    /// Everyone talks (a three-way call, or a completed transfer).
    Joined,
}

/// Who is on the call now (answered legs only).
#[derive(Debug, Clone, Default)]
pub struct Roster {
    /// The agent's leg is up.
    pub agent: bool,
    /// The caller holds: the agent's softphone put them on hold, or they
    /// wait while a transfer rings.
    pub caller_holds: bool,
    pub target: Option<TargetRole>,
    pub supervisor: Option<MonitorMode>,
    /// Parties nobody else hears.
    pub muted: Vec<Party>,
}

/// What each present party hears, and whether the caller gets hold music.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// One entry per present party, each with the parties it hears.
    pub hears: Vec<(Party, Vec<Party>)>,
    pub caller_music: bool,
}

impl Plan {
    /// What `party` hears; empty when it is not on the call.
    pub fn heard_by(&self, party: Party) -> &[Party] {
        self.hears
            .iter()
            .find(|(p, _)| *p == party)
            .map_or(&[], |(_, h)| h.as_slice())
    }
}

/// Decides who hears whom.
pub fn plan(r: &Roster) -> Plan {
    let consult = r.target == Some(TargetRole::Consult);
    // On hold (from the softphone, while a transfer rings, or while the
    // agent consults) the caller hears music and nobody in the
    // conversation hears the caller.
    let caller_music = r.caller_holds || (consult && r.agent);
    let joined = r.target == Some(TargetRole::Joined);
    let talking = |p: Party| match p {
        Party::Caller => !caller_music,
        Party::Agent => r.agent,
        Party::Target => joined || (consult && r.agent),
        Party::Supervisor => false,
    };
    let mut present = vec![Party::Caller];
    if r.agent {
        present.push(Party::Agent);
    }
    if r.target.is_some() {
        present.push(Party::Target);
    }
    if r.supervisor.is_some() {
        present.push(Party::Supervisor);
    }
    // Whom the supervisor's voice reaches.
    let hears_supervisor = |p: Party| match r.supervisor {
        Some(MonitorMode::Barge) => p != Party::Supervisor,
        Some(MonitorMode::Whisper) => p == Party::Agent,
        _ => false,
    };
    let hears = present
        .iter()
        .map(|&listener| {
            let sources = present
                .iter()
                .copied()
                .filter(|&p| p != listener && !r.muted.contains(&p))
                .filter(|&p| {
                    if listener == Party::Supervisor {
                        // A supervisor hears the whole conversation.
                        return true;
                    }
                    if p == Party::Supervisor {
                        return hears_supervisor(listener);
                    }
                    talking(listener) && talking(p)
                })
                .collect();
            (listener, sources)
        })
        .collect();
    Plan {
        hears,
        caller_music,
    }
}

#[cfg(test)]
mod tests {
    use super::Party::*;
    use super::*;

    fn roster(agent: bool, target: Option<TargetRole>) -> Roster {
        Roster {
            agent,
            target,
            ..Roster::default()
        }
    }

    #[test]
    fn caller_and_agent_hear_each_other() {
        let p = plan(&roster(true, None));
        assert_eq!(p.heard_by(Caller), [Agent]);
        assert_eq!(p.heard_by(Agent), [Caller]);
        assert!(!p.caller_music);
    }

    #[test]
    fn in_a_three_way_call_each_hears_the_other_two_and_not_itself() {
        let p = plan(&roster(true, Some(TargetRole::Joined)));
        assert_eq!(p.heard_by(Caller), [Agent, Target]);
        assert_eq!(p.heard_by(Agent), [Caller, Target]);
        assert_eq!(p.heard_by(Target), [Caller, Agent]);
        assert!(!p.caller_music);
    }

    #[test]
    fn after_the_agent_leaves_caller_and_target_talk() {
        let p = plan(&roster(false, Some(TargetRole::Joined)));
        assert_eq!(p.heard_by(Caller), [Target]);
        assert_eq!(p.heard_by(Target), [Caller]);
        assert_eq!(p.heard_by(Agent), [] as [Party; 0]);
    }

    #[test]
    fn consulting_puts_the_caller_on_music_out_of_earshot() {
        let p = plan(&roster(true, Some(TargetRole::Consult)));
        assert!(p.caller_music);
        assert_eq!(p.heard_by(Caller), [] as [Party; 0]);
        assert_eq!(p.heard_by(Agent), [Target]);
        assert_eq!(p.heard_by(Target), [Agent]);
    }

    #[test]
    fn a_muted_party_hears_but_is_not_heard() {
        let mut r = roster(true, Some(TargetRole::Joined));
        r.muted.push(Agent);
        let p = plan(&r);
        assert_eq!(p.heard_by(Caller), [Target]);
        assert_eq!(p.heard_by(Target), [Caller]);
        assert_eq!(p.heard_by(Agent), [Caller, Target]);
    }

    #[test]
    fn softphone_hold_gives_music_and_silence_both_ways() {
        let mut r = roster(true, None);
        r.caller_holds = true;
        let p = plan(&r);
        assert!(p.caller_music);
        assert_eq!(p.heard_by(Caller), [] as [Party; 0]);
        assert_eq!(p.heard_by(Agent), [] as [Party; 0]);
    }

    #[test]
    fn supervisor_modes_reach_the_right_ears() {
        let mut r = roster(true, Some(TargetRole::Joined));
        r.supervisor = Some(MonitorMode::Listen);
        let p = plan(&r);
        assert_eq!(p.heard_by(Supervisor), [Caller, Agent, Target]);
        assert_eq!(p.heard_by(Agent), [Caller, Target]);
        r.supervisor = Some(MonitorMode::Whisper);
        let p = plan(&r);
        assert_eq!(p.heard_by(Agent), [Caller, Target, Supervisor]);
        assert_eq!(p.heard_by(Caller), [Agent, Target]);
        assert_eq!(p.heard_by(Target), [Caller, Agent]);
        r.supervisor = Some(MonitorMode::Barge);
        let p = plan(&r);
        assert_eq!(p.heard_by(Caller), [Agent, Target, Supervisor]);
        assert_eq!(p.heard_by(Target), [Caller, Agent, Supervisor]);
    }

    #[test]
    fn a_supervisor_of_a_consult_hears_everyone() {
        let mut r = roster(true, Some(TargetRole::Consult));
        r.supervisor = Some(MonitorMode::Listen);
        let p = plan(&r);
        assert_eq!(p.heard_by(Supervisor), [Caller, Agent, Target]);
    }
}
