namespace Broker.Security;

/// <summary>
/// A destination pattern: <c>*</c> matches any characters within one <c>/</c>-separated segment (or a
/// <c>.</c>-separated word inside it), <c>**</c> matches anything including <c>/</c>; everything else is literal.
/// For example <c>/topic/chat.*</c>, <c>/queue/orders-*</c>, <c>/exchange/amq.topic/**</c>, <c>/**</c>.
/// A single <c>*</c> never matches <c>#</c>: in a subscription's AMQP routing key (<c>/exchange/amq.topic/chat.#</c>)
/// that wildcard spans any number of words, more than the one word <c>*</c> grants; only <c>**</c> covers it.
/// </summary>
public sealed class DestinationPattern
{
    private readonly string _pattern;

    /// <summary>Creates the pattern.</summary>
    public DestinationPattern(string pattern)
    {
        ArgumentException.ThrowIfNullOrEmpty(pattern);
        _pattern = pattern;
    }

    /// <summary>Whether the destination matches.</summary>
    public bool IsMatch(string destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        return Match(_pattern.AsSpan(), destination.AsSpan());
    }

    /// <inheritdoc/>
    public override string ToString() => _pattern;

    private static bool Match(ReadOnlySpan<char> pattern, ReadOnlySpan<char> text)
    {
        while (!pattern.IsEmpty)
        {
            if (pattern.StartsWith("**"))
            {
                var rest = pattern[2..];
                for (var i = text.Length; i >= 0; i--)
                {
                    if (Match(rest, text[i..]))
                    {
                        return true;
                    }
                }

                return false;
            }

            if (pattern[0] == '*')
            {
                var rest = pattern[1..];
                for (var i = 0; i <= text.Length; i++)
                {
                    if (Match(rest, text[i..]))
                    {
                        return true;
                    }

                    if (i < text.Length && text[i] is '/' or '.' or '#')
                    {
                        return false;
                    }
                }

                return false;
            }

            if (text.IsEmpty || text[0] != pattern[0])
            {
                return false;
            }

            pattern = pattern[1..];
            text = text[1..];
        }

        return text.IsEmpty;
    }
}
