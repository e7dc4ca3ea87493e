//! Union-find over customer indexes that refuses unions a merge must never
//! make: across different birth dates or sexes, across a pair an operator
//! has separated, or into a cluster too large to be one person.

use std::collections::HashMap;

use touchpoint_common::Date;

use super::Sex;

/// Why two sets were not joined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Union {
    Joined,
    AlreadyOne,
    Refused,
}

pub(super) struct Clusters {
    parent: Vec<u32>,
    size: Vec<u32>,
    /// Per root: the one birth date its members have, if any has one.
    birth: Vec<Option<Date>>,
    sex: Vec<Sex>,
    /// Per root: customers that must never join it.
    forbidden: HashMap<u32, Vec<u32>>,
    max_size: u32,
}

impl Clusters {
    pub(super) fn new(birth: Vec<Option<Date>>, sex: Vec<Sex>, max_size: u32) -> Self {
        let n = birth.len();
        Self {
            parent: (0..n as u32).collect(),
            size: vec![1; n],
            birth,
            sex,
            forbidden: HashMap::new(),
            max_size,
        }
    }

    pub(super) fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let grand = self.parent[self.parent[x as usize] as usize];
            self.parent[x as usize] = grand;
            x = grand;
        }
        x
    }

    pub(super) fn size_of(&mut self, x: u32) -> u32 {
        let r = self.find(x);
        self.size[r as usize]
    }

    /// `a` and `b` must never end up in one cluster.
    pub(super) fn forbid(&mut self, a: u32, b: u32) {
        let (ra, rb) = (self.find(a), self.find(b));
        self.forbidden.entry(ra).or_default().push(b);
        self.forbidden.entry(rb).or_default().push(a);
    }

    /// Joins without checks: for merges that already exist.
    pub(super) fn force_union(&mut self, a: u32, b: u32) -> Union {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return Union::AlreadyOne;
        }
        self.link(ra, rb);
        Union::Joined
    }

    pub(super) fn try_union(&mut self, a: u32, b: u32) -> Union {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return Union::AlreadyOne;
        }
        let (ia, ib) = (ra as usize, rb as usize);
        let births_differ =
            matches!((self.birth[ia], self.birth[ib]), (Some(x), Some(y)) if x != y);
        let sexes_differ = self.sex[ia] != Sex::Unknown
            && self.sex[ib] != Sex::Unknown
            && self.sex[ia] != self.sex[ib];
        if births_differ
            || sexes_differ
            || self.size[ia] + self.size[ib] > self.max_size
            || self.separated(ra, rb)
            || self.separated(rb, ra)
        {
            return Union::Refused;
        }
        self.link(ra, rb);
        Union::Joined
    }

    /// Whether a customer the root `r` must never join is in `other`.
    fn separated(&mut self, r: u32, other: u32) -> bool {
        let Some(list) = self.forbidden.get(&r).cloned() else {
            return false;
        };
        list.into_iter().any(|f| self.find(f) == other)
    }

    fn link(&mut self, ra: u32, rb: u32) {
        let (big, small) = if self.size[ra as usize] >= self.size[rb as usize] {
            (ra, rb)
        } else {
            (rb, ra)
        };
        let (b, s) = (big as usize, small as usize);
        self.parent[s] = big;
        self.size[b] += self.size[s];
        if self.birth[b].is_none() {
            self.birth[b] = self.birth[s];
        }
        if self.sex[b] == Sex::Unknown {
            self.sex[b] = self.sex[s];
        }
        if let Some(moved) = self.forbidden.remove(&small) {
            self.forbidden.entry(big).or_default().extend(moved);
        }
    }
}
