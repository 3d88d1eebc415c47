//! The one driver of translated streams. Every translating adapter (and the Anthropic inbound
//! bridge) feeds an upstream's events through a pure translator; the plumbing around it is where
//! stream bugs hide (an event after an error, an error reported twice, an upstream read after
//! the end, an end that skips the translator's last check), so it exists once, here, and each
//! adapter writes only the small [`Translator`] impl that says what its translator produces.
//!
//! The contract the driver keeps for every translator:
//! - events come out in the order the translator produced them, as soon as they are produced;
//! - an error (the upstream's, the translator's, or [`Translator::finish`]'s) comes after the
//!   events produced before it, once, and nothing follows it;
//! - when the upstream ends, `finish` runs once: its events close the stream, or its error
//!   says the stream was broken;
//! - after the end, the stream stays ended (polling again yields `None`).

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;

use super::{EventStream, ProviderError, StreamEvent};

/// A stream translation as the driver sees it: a state machine fed one upstream item at a time.
///
/// Implementations wrap a pure translator (which keeps its own output type) and turn its output
/// into [`StreamEvent`]s.
pub trait Translator: Send + 'static {
    /// One item of the upstream (a decoded SSE event, a chunk of body bytes, an event of
    /// another adapter's stream).
    type Input;

    /// Translates one upstream item, appending the events it yields to `out`. On an error, the
    /// events appended before it are still sent, then the error ends the stream.
    fn push(&mut self, input: Self::Input, out: &mut Vec<StreamEvent>)
    -> Result<(), ProviderError>;

    /// The upstream has ended (or [`is_done`](Self::is_done) said it need not be read further):
    /// appends the closing events, or says why the stream is broken.
    fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError>;

    /// Whether the translation has reached its end: the upstream is read no further and
    /// [`finish`](Self::finish) runs at once. By default the upstream is read to its end.
    fn is_done(&self) -> bool {
        false
    }

    /// Whether everything the answer needs has arrived, so that an upstream failure now is an
    /// end like any other ([`finish`](Self::finish) runs, the failure is dropped). By default an
    /// upstream failure is the stream's error.
    fn is_complete(&self) -> bool {
        false
    }
}

/// The events of `upstream`, translated by `translator`.
pub fn translate_stream<S, T>(upstream: S, translator: T) -> EventStream
where
    T: Translator,
    S: Stream<Item = Result<T::Input, ProviderError>> + Send + 'static,
{
    Box::pin(Translated {
        upstream: Box::pin(upstream),
        translator,
        pending: VecDeque::new(),
        failure: None,
        ended: false,
    })
}

struct Translated<S, T> {
    upstream: Pin<Box<S>>,
    translator: T,
    /// Translated events not yet yielded.
    pending: VecDeque<StreamEvent>,
    /// Yielded after `pending`, then nothing more.
    failure: Option<ProviderError>,
    /// The upstream is read no further.
    ended: bool,
}

// The translator is never pinned (only the boxed upstream is polled through a pin).
impl<S, T> Unpin for Translated<S, T> {}

impl<S, T> Translated<S, T>
where
    T: Translator,
{
    /// Feeds one upstream item (or its end, `None`) to the translator and queues the outcome.
    fn step(&mut self, item: Option<Result<T::Input, ProviderError>>) {
        let mut out = Vec::new();
        let t = &mut self.translator;
        let result = match item {
            Some(Ok(input)) => match t.push(input, &mut out) {
                Ok(()) if t.is_done() => {
                    self.ended = true;
                    t.finish(&mut out)
                }
                other => other,
            },
            Some(Err(e)) if !t.is_complete() => Err(e),
            Some(Err(_)) | None => {
                self.ended = true;
                t.finish(&mut out)
            }
        };
        self.pending.extend(out);
        if let Err(e) = result {
            self.ended = true;
            self.failure = Some(e);
        }
    }
}

impl<S, T> Stream for Translated<S, T>
where
    T: Translator,
    S: Stream<Item = Result<T::Input, ProviderError>>,
{
    type Item = Result<StreamEvent, ProviderError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(event) = this.pending.pop_front() {
                return Poll::Ready(Some(Ok(event)));
            }
            if let Some(e) = this.failure.take() {
                return Poll::Ready(Some(Err(e)));
            }
            if this.ended {
                return Poll::Ready(None);
            }
            match this.upstream.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(item) => this.step(item),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_util::{StreamExt, stream};

    use super::*;

    /// Each input is a word: `fail` is a translation error, `two` yields two events then fails,
    /// `end` ends the translation, `all` makes it complete; any other word is one event.
    #[derive(Default)]
    struct Words {
        done: bool,
        complete: bool,
        /// `finish` fails (the stream ended too early) instead of yielding `fin`.
        unfinished: bool,
        finished: usize,
    }

    impl Translator for Words {
        type Input = &'static str;

        fn push(
            &mut self,
            word: &'static str,
            out: &mut Vec<StreamEvent>,
        ) -> Result<(), ProviderError> {
            match word {
                "fail" => Err(ProviderError::InvalidResponse("fail".into())),
                "two" => {
                    out.push(StreamEvent::data("one"));
                    out.push(StreamEvent::data("two"));
                    Err(ProviderError::InvalidResponse("after two".into()))
                }
                "end" => {
                    self.done = true;
                    out.push(StreamEvent::data("end"));
                    Ok(())
                }
                "all" => {
                    self.complete = true;
                    out.push(StreamEvent::data("all"));
                    Ok(())
                }
                word => {
                    out.push(StreamEvent::data(word));
                    Ok(())
                }
            }
        }

        fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
            self.finished += 1;
            assert_eq!(self.finished, 1, "finish runs once");
            if self.unfinished {
                return Err(ProviderError::StreamBroken("unfinished".into()));
            }
            out.push(StreamEvent::data("fin"));
            Ok(())
        }

        fn is_done(&self) -> bool {
            self.done
        }

        fn is_complete(&self) -> bool {
            self.complete
        }
    }

    fn ok(word: &'static str) -> Result<&'static str, ProviderError> {
        Ok(word)
    }

    /// The stream's items, `Ok` events as their data and errors as `Err`, polling twice more
    /// after the end.
    async fn run(
        items: Vec<Result<&'static str, ProviderError>>,
        translator: Words,
    ) -> Vec<Result<String, ProviderError>> {
        let mut s = translate_stream(stream::iter(items), translator);
        let mut out = Vec::new();
        while let Some(item) = s.next().await {
            out.push(item.map(|e| String::from_utf8(e.data.to_vec()).unwrap()));
        }
        assert!(s.next().await.is_none(), "nothing after the end");
        assert!(s.next().await.is_none(), "nothing after the end");
        out
    }

    fn texts(words: &[&str]) -> Vec<Result<String, ProviderError>> {
        words.iter().map(|w| Ok((*w).to_owned())).collect()
    }

    #[tokio::test]
    async fn events_in_order_then_the_finish_output() {
        let out = run(vec![ok("a"), ok("b")], Words::default()).await;
        assert_eq!(out, texts(&["a", "b", "fin"]));
        let out = run(vec![], Words::default()).await;
        assert_eq!(out, texts(&["fin"]));
    }

    #[tokio::test]
    async fn an_upstream_error_is_yielded_once_and_ends_the_stream() {
        let broken = || Err(ProviderError::StreamBroken("cut".into()));
        let out = run(vec![ok("a"), broken(), ok("b")], Words::default()).await;
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0], Ok("a".to_owned()));
        assert!(matches!(out[1], Err(ProviderError::StreamBroken(_))));
    }

    #[tokio::test]
    async fn a_translation_error_follows_the_events_before_it() {
        let out = run(vec![ok("a"), ok("fail"), ok("b")], Words::default()).await;
        assert_eq!(out.len(), 2, "no finish, nothing after the error: {out:?}");
        assert!(matches!(out[1], Err(ProviderError::InvalidResponse(_))));

        let out = run(vec![ok("a"), ok("two"), ok("b")], Words::default()).await;
        assert_eq!(out[..3], texts(&["a", "one", "two"])[..]);
        assert_eq!(out.len(), 4, "{out:?}");
        assert!(matches!(out[3], Err(ProviderError::InvalidResponse(_))));
    }

    #[tokio::test]
    async fn a_failing_finish_is_the_last_item() {
        let unfinished = Words {
            unfinished: true,
            ..Words::default()
        };
        let out = run(vec![ok("a")], unfinished).await;
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(matches!(out[1], Err(ProviderError::StreamBroken(_))));
    }

    #[tokio::test]
    async fn a_done_translation_reads_no_further() {
        let read = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&read);
        let upstream = stream::iter(vec![ok("a"), ok("end"), ok("never")]).inspect(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        let out: Vec<_> = translate_stream(upstream, Words::default()).collect().await;
        let out: Vec<_> = out
            .into_iter()
            .map(|e| String::from_utf8(e.unwrap().data.to_vec()).unwrap())
            .collect();
        assert_eq!(out, ["a", "end", "fin"]);
        assert_eq!(
            read.load(Ordering::Relaxed),
            2,
            "the upstream is not read after the end"
        );
    }

    #[tokio::test]
    async fn an_upstream_failure_after_completion_is_an_end() {
        let broken = || Err(ProviderError::StreamBroken("cut".into()));
        let out = run(vec![ok("all"), broken(), ok("never")], Words::default()).await;
        assert_eq!(out, texts(&["all", "fin"]));
        // Before completion, the same failure is an error.
        let out = run(vec![ok("a"), broken()], Words::default()).await;
        assert!(matches!(out[1], Err(ProviderError::StreamBroken(_))));
    }
}
