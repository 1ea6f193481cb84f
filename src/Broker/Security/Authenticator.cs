using System.Net;
using System.Security.Claims;
using System.Security.Cryptography;
using Broker.Configuration;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Security;

/// <summary>Who a connection is: its name, roles, and when its credential (a JWT) expires.</summary>
/// <param name="Name">The user name (JWT: the name claim).</param>
/// <param name="Roles">Roles, for permissions.</param>
/// <param name="ExpiresAt">
/// When the token stops being accepted — its <c>exp</c> plus the configured clock skew, the same tolerance CONNECT
/// allows, so a token admitted at CONNECT is not dropped the moment after; null for passwords and anonymous.
/// </param>
/// <param name="Provider">"anonymous", "users" or "jwt".</param>
public sealed record BrokerPrincipal(string Name, IReadOnlyList<string> Roles, DateTimeOffset? ExpiresAt, string Provider);

/// <summary>The outcome of authenticating: a principal, or why not (safe to show the client).</summary>
public readonly record struct AuthenticationResult(BrokerPrincipal? Principal, string? Failure)
{
    internal static AuthenticationResult Success(BrokerPrincipal principal) => new(principal, null);

    internal static AuthenticationResult Fail(string reason) => new(null, reason);
}

/// <summary>
/// The authentication providers: <c>anonymous</c>, <c>users</c> (PBKDF2 hashes in configuration) and <c>jwt</c>
/// (validated with Microsoft.IdentityModel.JsonWebTokens: issuer, audience, HMAC/RSA/ECDSA keys, clock skew).
/// A wrong password and an unknown user get the same answer.
/// </summary>
public sealed class Authenticator
{
    private const string BadCredentials = "access refused: bad login or passcode";
    // One for every anonymous connection: it is immutable and carries nothing of the connection.
    private static readonly BrokerPrincipal AnonymousPrincipal = new("anonymous", [], null, "anonymous");

    private readonly SecurityOptions _options;
    private readonly JsonWebTokenHandler _jwt = new();
    private readonly TokenValidationParameters? _validation;

    /// <summary>Reads the providers from the options.</summary>
    public Authenticator(IOptions<BrokerOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var broker = options.Value;
        _options = broker.Security;
        AnonymousAllowed = _options.Anonymous ?? IsLoopbackOnly(broker);
        if (_options.Jwt.Enabled)
        {
            var jwt = _options.Jwt;
            _validation = new TokenValidationParameters
            {
                ValidIssuer = jwt.Issuer,
                ValidateIssuer = jwt.Issuer is not null,
                ValidAudience = jwt.Audience,
                ValidateAudience = jwt.Audience is not null,
                IssuerSigningKeys = LoadKeys(jwt),
                ValidateIssuerSigningKey = true,
                ValidateLifetime = true,
                ClockSkew = jwt.ClockSkew,
                NameClaimType = jwt.NameClaim,
                RoleClaimType = jwt.RoleClaim,
            };
        }
    }

    /// <summary>Whether clients may connect without credentials.</summary>
    public bool AnonymousAllowed { get; }

    /// <summary>Whether any provider at all lets someone in (false is a configuration error).</summary>
    public bool AnyProvider => AnonymousAllowed || _options.Users.Count > 0 || _validation is not null;

    /// <summary>
    /// Authenticates a CONNECT: a bearer token (from the <c>Authorization</c> header or the WebSocket upgrade) or a JWT
    /// passcode goes to the jwt provider; a login to the users provider; no credentials to anonymous.
    /// </summary>
    public async ValueTask<AuthenticationResult> AuthenticateAsync(string? login, string? passcode, string? bearerToken)
    {
        if (bearerToken is not null)
        {
            return await ValidateTokenAsync(bearerToken);
        }

        if (!string.IsNullOrEmpty(login) && _options.Users.TryGetValue(login, out var user))
        {
            return passcode is not null && PasswordHasher.Verify(passcode, user.PasswordHash)
                ? AuthenticationResult.Success(new BrokerPrincipal(login, user.Roles, null, "users"))
                : AuthenticationResult.Fail(BadCredentials);
        }

        if (_validation is not null && passcode is not null && LooksLikeJwt(passcode))
        {
            return await ValidateTokenAsync(passcode);
        }

        // Anonymous admits what no other provider claims: no credentials, or a login that is not a configured user
        // (clients such as stomp.py send guest/guest by default). A configured user's wrong password never gets here.
        if (AnonymousAllowed)
        {
            // Always named "anonymous": a claimed login proves nothing, so it must not pick up that user's permissions.
            return AuthenticationResult.Success(AnonymousPrincipal);
        }

        if (string.IsNullOrEmpty(login) && string.IsNullOrEmpty(passcode))
        {
            return AuthenticationResult.Fail("access refused: credentials required (login and passcode, or a bearer token)");
        }

        // An unknown user costs the same PBKDF2 work as a wrong password, so timing does not tell which users exist.
        PasswordHasher.Verify(passcode ?? "", UnknownUserHash.Value);
        return AuthenticationResult.Fail(BadCredentials);
    }

    private static readonly Lazy<string> UnknownUserHash = new(() => PasswordHasher.Hash(Guid.NewGuid().ToString()));

    /// <summary>Validates a replacement token for a live connection: valid, and for the same user.</summary>
    public async ValueTask<AuthenticationResult> RefreshAsync(BrokerPrincipal current, string token)
    {
        ArgumentNullException.ThrowIfNull(current);
        var result = await ValidateTokenAsync(token);
        if (result.Principal is { } principal && principal.Name != current.Name)
        {
            return AuthenticationResult.Fail("token refused: it names a different user than the connection's");
        }

        return result;
    }

    private async ValueTask<AuthenticationResult> ValidateTokenAsync(string token)
    {
        if (_validation is null)
        {
            return AuthenticationResult.Fail("access refused: bearer tokens are not accepted here");
        }

        var result = await _jwt.ValidateTokenAsync(token, _validation);
        if (!result.IsValid)
        {
            return AuthenticationResult.Fail(result.Exception is SecurityTokenExpiredException ? "token expired" : "access refused: invalid token");
        }

        var identity = result.ClaimsIdentity;
        var name = identity.FindFirst(_options.Jwt.NameClaim)?.Value ?? identity.Name ?? "";
        if (name.Length == 0)
        {
            return AuthenticationResult.Fail($"access refused: the token has no '{_options.Jwt.NameClaim}' claim");
        }

        var roles = identity.FindAll(_options.Jwt.RoleClaim).Select(c => c.Value).ToList();
        DateTimeOffset? expires = result.SecurityToken.ValidTo == DateTime.MinValue
            ? null
            : new DateTimeOffset(result.SecurityToken.ValidTo, TimeSpan.Zero) + _validation.ClockSkew;
        return AuthenticationResult.Success(new BrokerPrincipal(name, roles, expires, "jwt"));
    }

    private static bool LooksLikeJwt(string value) => value.Count(c => c == '.') == 2 && !value.Contains(' ', StringComparison.Ordinal);

    private static List<SecurityKey> LoadKeys(JwtOptions jwt)
    {
        var keys = new List<SecurityKey>();
        keys.AddRange(jwt.SymmetricKeys.Select(k => new SymmetricSecurityKey(Convert.FromBase64String(k))));
        foreach (var entry in jwt.PublicKeys)
        {
            var pem = File.Exists(entry) ? File.ReadAllText(entry) : entry;
            // SPKI "PUBLIC KEY" PEM looks the same for both algorithms: try ECDSA, then RSA.
            if (TryImport(ECDsa.Create(), pem) is { } ec)
            {
                keys.Add(new ECDsaSecurityKey(ec));
            }
            else
            {
                var rsa = RSA.Create();
                rsa.ImportFromPem(pem);
                keys.Add(new RsaSecurityKey(rsa));
            }
        }

        return keys;
    }

    private static ECDsa? TryImport(ECDsa ec, string pem)
    {
        try
        {
            ec.ImportFromPem(pem);
            return ec;
        }
        catch (CryptographicException)
        {
            ec.Dispose();
            return null;
        }
        catch (ArgumentException)
        {
            ec.Dispose();
            return null;
        }
    }

    private static bool IsLoopbackOnly(BrokerOptions options) =>
        options.BindAddress is "localhost" || (IPAddress.TryParse(options.BindAddress, out var address) && IPAddress.IsLoopback(address));
}

/// <summary>Read (SUBSCRIBE) and write (SEND) permissions per user or role, as destination patterns.</summary>
public sealed class DestinationAuthorizer
{
    private readonly List<(HashSet<string> Users, HashSet<string> Roles, DestinationPattern[] Read, DestinationPattern[] Write)> _rules;

    /// <summary>Reads the rules from the options.</summary>
    public DestinationAuthorizer(IOptions<BrokerOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _rules = options.Value.Security.Permissions
            .Select(p => (
                new HashSet<string>(p.Users, StringComparer.Ordinal),
                new HashSet<string>(p.Roles, StringComparer.Ordinal),
                p.Read.Select(r => new DestinationPattern(r)).ToArray(),
                p.Write.Select(w => new DestinationPattern(w)).ToArray()))
            .ToList();
    }

    /// <summary>Whether the principal may SUBSCRIBE to the destination.</summary>
    public bool CanRead(BrokerPrincipal principal, string destination) => Allows(principal, destination, read: true);

    /// <summary>Whether the principal may SEND to the destination.</summary>
    public bool CanWrite(BrokerPrincipal principal, string destination) => Allows(principal, destination, read: false);

    private bool Allows(BrokerPrincipal principal, string destination, bool read)
    {
        ArgumentNullException.ThrowIfNull(principal);
        if (_rules.Count == 0)
        {
            return true;
        }

        foreach (var (users, roles, readPatterns, writePatterns) in _rules)
        {
            var applies = users.Contains("*") || users.Contains(principal.Name) || principal.Roles.Any(roles.Contains);
            if (applies && (read ? readPatterns : writePatterns).Any(p => p.IsMatch(destination)))
            {
                return true;
            }
        }

        return false;
    }
}
