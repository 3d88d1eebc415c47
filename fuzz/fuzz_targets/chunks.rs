//! How the decoder targets split their input: chunk sizes cycle through `sizes` (the whole input
//! at once when `sizes` is empty), and a size of 0 also feeds an empty chunk, then one byte.
//! Shared by the targets with `#[path]`, as each target is its own binary.

/// The chunks to push, in order; at least one, even for empty input.
pub fn chunks<'a>(input: &'a [u8], sizes: &[u8]) -> Vec<&'a [u8]> {
    if sizes.is_empty() {
        return vec![input];
    }
    let mut out = Vec::new();
    let mut rest = input;
    for &size in sizes.iter().cycle() {
        let take = if size == 0 {
            out.push(&[][..]);
            1
        } else {
            usize::from(size)
        };
        let (chunk, tail) = rest.split_at(take.min(rest.len()));
        out.push(chunk);
        rest = tail;
        if rest.is_empty() {
            break;
        }
    }
    out
}
