"use client";
import { ApiKeys, Members, OwnPassword, Secrets } from "@/src/ui/settings";
import { Invitations } from "@/src/ui/invitations";
import { Shell } from "@/src/ui/shell";

export default function SettingsPage() {
  return (
    <Shell>
      <h1>Team</h1>
      <OwnPassword />
      <Members />
      <Invitations />
      <ApiKeys />
      <Secrets />
    </Shell>
  );
}
