// Sign-in with Amplify JS v6 (aws-amplify/auth). SRP is Amplify's default and the only password
// flow a deployed app client allows; a config.json may name USER_PASSWORD_AUTH instead (a local
// gateway whose user pool cannot answer SRP).
import { Amplify } from "aws-amplify";
import {
  confirmSignIn,
  fetchAuthSession,
  getCurrentUser,
  signIn,
  signOut,
} from "aws-amplify/auth";

/** Point Amplify at the stack in `config` (config.json). Safe to call again with a new config. */
export function configureAmplify(config) {
  const cognito = { userPoolId: config.userPoolId, userPoolClientId: config.userPoolClientId };
  // The local gateway proxies the user-facing Cognito operations on its own origin.
  if (config.cognitoEndpoint) cognito.userPoolEndpoint = config.cognitoEndpoint;
  Amplify.configure({
    Auth: { Cognito: cognito },
    API: {
      Events: {
        endpoint: config.eventsHttpEndpoint,
        region: config.region,
        defaultAuthMode: "userPool",
      },
    },
  });
}

/** The signed-in user's ID-token claims, refreshing tokens if needed; null when signed out. */
export async function currentClaims({ forceRefresh = false } = {}) {
  try {
    await getCurrentUser();
  } catch {
    return null;
  }
  const session = await fetchAuthSession({ forceRefresh });
  return session.tokens?.idToken?.payload ?? null;
}

/**
 * Whether a failure to refresh means the session is over (as opposed to the gateway being
 * unreachable for now). Cognito's refusals are named `...Exception`; a network failure is not.
 */
export function isSessionOver(err) {
  return !err || /Exception$/.test(err.name || "") || err.name === "NoValidAuthTokens";
}

/**
 * Sign in. `ask(step, detail)` is called for each extra step Cognito asks for and resolves to
 * the user's answer: "new-password", or "totp" (detail.setupKey is set the first time).
 */
export async function signInWith(config, username, password, ask) {
  const authFlowType = config.authFlow === "USER_PASSWORD_AUTH" ? "USER_PASSWORD_AUTH" : "USER_SRP_AUTH";
  let result;
  try {
    result = await signIn({ username, password, options: { authFlowType } });
  } catch (err) {
    if (err.name !== "UserAlreadyAuthenticatedException") throw err;
    await signOut();
    result = await signIn({ username, password, options: { authFlowType } });
  }
  for (;;) {
    const step = result.nextStep.signInStep;
    if (step === "DONE") return;
    let answer;
    switch (step) {
      case "CONFIRM_SIGN_IN_WITH_NEW_PASSWORD_REQUIRED":
        answer = await ask("new-password", {});
        break;
      case "CONFIRM_SIGN_IN_WITH_TOTP_CODE":
        answer = await ask("totp", {});
        break;
      case "CONTINUE_SIGN_IN_WITH_TOTP_SETUP":
        answer = await ask("totp", { setupKey: result.nextStep.totpSetupDetails.sharedSecret });
        break;
      case "CONTINUE_SIGN_IN_WITH_MFA_SELECTION":
      case "CONTINUE_SIGN_IN_WITH_MFA_SETUP_SELECTION":
        answer = "TOTP";
        break;
      default:
        throw new Error(`Cognito asked for a sign-in step this page does not support (${step}).`);
    }
    result = await confirmSignIn({ challengeResponse: answer });
  }
}

/** Sign out of this browser; a gateway that no longer knows the tokens must not block it. */
export async function signOutHere() {
  try {
    await signOut();
  } catch {
    /* the tokens are cleared locally even when revoking them fails */
  }
}
