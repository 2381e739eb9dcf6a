//! A slab: values kept by a small integer key that doubles as the mio token,
//! so a loop finds the connection an event is for without hashing, and can
//! add or drop connections mid-run (a cluster's masters come and go).

use mio::Token;

/// Token 0 is each loop's waker; slab entries start at 1.
pub const WAKER: Token = Token(0);

/// Values addressed by [`Token`].
#[derive(Debug)]
pub struct Slab<T> {
    entries: Vec<Option<T>>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            entries: Vec::new(),
        }
    }
}

impl<T> Slab<T> {
    /// The token the next [`Slab::insert`] will return.
    pub fn vacant_token(&self) -> Token {
        let index = self
            .entries
            .iter()
            .position(Option::is_none)
            .unwrap_or(self.entries.len());
        Token(index + 1)
    }

    /// Stores `value` and returns its token.
    pub fn insert(&mut self, value: T) -> Token {
        let token = self.vacant_token();
        let index = token.0 - 1;
        if index == self.entries.len() {
            self.entries.push(Some(value));
        } else {
            self.entries[index] = Some(value);
        }
        token
    }

    /// Removes and returns the value of `token`.
    pub fn remove(&mut self, token: Token) -> Option<T> {
        self.entries.get_mut(token.0.checked_sub(1)?)?.take()
    }

    pub fn get(&self, token: Token) -> Option<&T> {
        self.entries.get(token.0.checked_sub(1)?)?.as_ref()
    }

    pub fn get_mut(&mut self, token: Token) -> Option<&mut T> {
        self.entries.get_mut(token.0.checked_sub(1)?)?.as_mut()
    }

    /// The tokens in use, for visiting every entry while mutating the loop.
    pub fn tokens(&self) -> Vec<Token> {
        (0..self.entries.len())
            .filter(|&i| self.entries[i].is_some())
            .map(|i| Token(i + 1))
            .collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.entries.iter().flatten()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.entries.iter_mut().flatten()
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_reused_after_removal_and_never_the_waker() {
        let mut slab = Slab::default();
        let a = slab.insert("a");
        let b = slab.insert("b");
        assert_eq!((a, b), (Token(1), Token(2)));
        assert_ne!(a, WAKER);
        assert_eq!(slab.remove(a), Some("a"));
        assert_eq!(slab.remove(a), None);
        assert_eq!(slab.remove(WAKER), None);
        assert_eq!(slab.len(), 1);
        assert_eq!(slab.insert("c"), Token(1));
        assert_eq!(slab.get_mut(b), Some(&mut "b"));
        assert_eq!(slab.iter().count(), 2);
        assert_eq!(slab.tokens(), vec![Token(1), Token(2)]);
    }
}
